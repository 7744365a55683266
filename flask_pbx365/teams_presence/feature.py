"""The declaration of Teams presence: polled every ``interval_seconds`` while Teams → PBX is on, call sessions
renewed by every scheduler pass."""
from __future__ import annotations

from typing import Any, Mapping

from ..feature import Feature
from ..host import PRESENCE_STATUSES
from ..runs.schedule import every
from ..settings import boolean, guid, invalid, list_of, whole
from .calls import renew_due
from .jobs import run_teams_presence_sync
from .rules import ACTIVITIES, AVAILABILITIES, DEFAULT_MAPPING
from .scope import KIND, probe
from .tab import TAB


def teams_mapping(path: str, value: Any) -> dict:
    """The ``teams_presence.mapping`` validator: Teams availability (or activity) -> PBX status or null."""
    if not isinstance(value, dict):
        raise invalid(path, "must be an object mapping Teams availability values to PBX statuses")
    out = {}
    for key, status in value.items():
        if key not in AVAILABILITIES and key not in ACTIVITIES:
            raise invalid(f"{path}.{key}", f"is not a Teams availability ({', '.join(AVAILABILITIES)}) or activity "
                                           f"({', '.join(ACTIVITIES)})")
        if status is not None and status not in PRESENCE_STATUSES:
            raise invalid(f"{path}.{key}", f"must be null or one of {', '.join(PRESENCE_STATUSES)}")
        out[key] = status
    return out


def _schedule(settings: Mapping[str, Any]) -> tuple[str, str] | None:
    options = settings["teams_presence"]
    if not (options["enabled"] and options["to_pbx"]) or settings["configure"]["cloud"] == "china":
        return None
    return every(options["interval_seconds"]), "UTC"


FEATURE = Feature(
    name=KIND,
    label="Teams presence",
    job=run_teams_presence_sync,
    schedule=_schedule,
    schedule_key="teams_presence",
    cli_name="teams-presence",
    cli_help="Read Microsoft Teams presence once and apply it to PBX statuses.",
    permissions={"teams_presence": (("Presence.Read.All", "Presence.ReadWrite.All"),)},
    optional=("teams_presence",),
    settings={"teams_presence": {
        "enabled": (False, boolean),
        "to_pbx": (True, boolean),
        "to_teams": (True, boolean),
        "interval_seconds": (30, whole(10, 86400)),
        "mapping": (dict(DEFAULT_MAPPING), teams_mapping),
        "opt_out": ([], list_of(guid)),
    }},
    tab=TAB,
    probe=probe,
    scheduler_pass=renew_due,
)
