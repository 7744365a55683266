"""Presence from calendars (3CX): the Outlook *Show as* of the meeting in progress drives the PBX status.

``flask pbx365 sync presence TENANT`` and the Presence tab request a run of the kind ``presence``; in automatic
operation the scheduler calls :func:`dispatch_presence` every minute. Importing this package registers the kind
with the run machinery and the dispatcher with the scheduler. The rules are in :mod:`.rules`, the calendar
reading in :mod:`.calendar`, the run in :mod:`.engine`.
"""
from __future__ import annotations

from ..settings import get_settings
from ..sync.runs import register_kind, request_run
from .jobs import run_presence_sync

KIND = "presence"
#: The scheduler slot of automatic presence runs: every minute (UTC), while the Presence tab has it enabled.
SCHEDULE = ("* * * * *", "UTC")


def dispatch_presence(tenant: str, trigger: str = "schedule"):
    """The scheduler's dispatcher: request a presence run when the tenant has calendar presence enabled.

    A run still queued or running is joined, so slow runs never pile up.
    """
    if not get_settings(tenant)["presence"]["enabled"]:
        return None
    return request_run(tenant, KIND, trigger=trigger)


def register() -> None:
    """Register calendar presence with the run machinery and the scheduler (idempotent)."""
    from ..scheduler import DISPATCHERS

    register_kind(KIND, run_presence_sync)
    DISPATCHERS[KIND] = dispatch_presence


register()

__all__ = ["KIND", "SCHEDULE", "dispatch_presence", "register", "run_presence_sync"]
