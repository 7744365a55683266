"""The declaration of calendar presence: checked every minute (UTC) while the Presence tab has it enabled."""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from ..feature import Feature, Subscriptions
from ..host import PRESENCE_STATUSES
from ..settings import boolean, invalid
from .engine import KIND
from .jobs import run_presence_sync
from .tab import TAB

#: The scheduler slot of automatic presence runs.
SCHEDULE = ("* * * * *", "UTC")
SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")


def presence_mapping(path: str, value: Any) -> dict:
    """The ``presence.mapping`` validator: Outlook showAs -> PBX status or null."""
    if not isinstance(value, dict):
        raise invalid(path, "must be an object mapping Outlook showAs values to PBX statuses")
    out = {}
    for key, status in value.items():
        if key not in SHOW_AS:
            raise invalid(f"{path}.{key}", f"is not an Outlook showAs value ({', '.join(SHOW_AS)})")
        if status is not None and status not in PRESENCE_STATUSES:
            raise invalid(f"{path}.{key}", f"must be null or one of {', '.join(PRESENCE_STATUSES)}")
        out[key] = status
    return out


def _schedule(settings: Mapping[str, Any]) -> tuple[str, str] | None:
    return SCHEDULE if settings["presence"]["enabled"] else None


def _subscriptions(ctx: Any) -> Iterator[str]:
    if ctx.settings["presence"]["enabled"]:
        for oid in ctx.linked_users():
            yield f"users/{oid}/events"


FEATURE = Feature(
    name=KIND,
    label="Calendar presence sync",
    job=run_presence_sync,
    schedule=_schedule,
    schedule_key="presence",
    cli_name="presence",
    cli_help="Sync calendar free/busy to PBX presence.",
    permissions={"calendar": (("Calendars.Read",),)},
    optional=("calendar",),
    settings={"presence": {
        "enabled": (False, boolean),
        "mapping": ({"busy": "dnd", "workingElsewhere": "dnd", "oof": "away", "tentative": None}, presence_mapping),
    }},
    tab=TAB,
    subscriptions=Subscriptions(_subscriptions, lifetime_minutes=4200),
)
