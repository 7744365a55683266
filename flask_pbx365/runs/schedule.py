"""When a schedule's slots fall: a time of day (``"00:00"``, in the tenant's time zone), a cron expression, or
``"@every 30s"`` (slots every so many seconds since the epoch, for polls more often than once a minute)."""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from croniter import croniter


def _cron(schedule: str) -> str:
    if ":" in schedule and " " not in schedule:
        hour, minute = schedule.split(":")
        return f"{int(minute)} {int(hour)} * * *"
    return schedule


_EVERY = re.compile(r"^@every (\d+)s$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def every(seconds: int) -> str:
    """The schedule of a slot every ``seconds`` seconds."""
    return f"@every {int(seconds)}s"


def _interval(schedule: str) -> int | None:
    match = _EVERY.match(schedule)
    return max(1, int(match.group(1))) if match else None


def _slot(interval: int, moment: datetime, rounding) -> datetime:
    return _EPOCH + timedelta(seconds=rounding((moment - _EPOCH).total_seconds() / interval) * interval)


def next_run(schedule: str, tz: str, after: datetime) -> datetime:
    """The first slot of ``schedule`` strictly after ``after`` (UTC-aware in, UTC-aware out)."""
    interval = _interval(schedule)
    if interval:
        slot = _slot(interval, after, math.ceil)
        return slot if slot > after else slot + timedelta(seconds=interval)
    local = after.astimezone(ZoneInfo(tz))
    return croniter(_cron(schedule), local).get_next(datetime).astimezone(timezone.utc)


def previous_run(schedule: str, tz: str, before: datetime) -> datetime:
    """The last slot of ``schedule`` strictly before ``before``."""
    interval = _interval(schedule)
    if interval:
        slot = _slot(interval, before, math.floor)
        return slot if slot < before else slot - timedelta(seconds=interval)
    local = before.astimezone(ZoneInfo(tz))
    return croniter(_cron(schedule), local).get_prev(datetime).astimezone(timezone.utc)
