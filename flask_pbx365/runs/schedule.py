"""When a schedule's slots fall: a time of day (``"00:00"``, in the tenant's time zone) or a cron expression."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from croniter import croniter


def _cron(schedule: str) -> str:
    if ":" in schedule and " " not in schedule:
        hour, minute = schedule.split(":")
        return f"{int(minute)} {int(hour)} * * *"
    return schedule


def next_run(schedule: str, tz: str, after: datetime) -> datetime:
    """The first slot of ``schedule`` strictly after ``after`` (UTC-aware in, UTC-aware out)."""
    local = after.astimezone(ZoneInfo(tz))
    return croniter(_cron(schedule), local).get_next(datetime).astimezone(timezone.utc)


def previous_run(schedule: str, tz: str, before: datetime) -> datetime:
    """The last slot of ``schedule`` strictly before ``before``."""
    local = before.astimezone(ZoneInfo(tz))
    return croniter(_cron(schedule), local).get_prev(datetime).astimezone(timezone.utc)
