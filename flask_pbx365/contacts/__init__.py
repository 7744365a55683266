"""Contacts sync: personal contacts → each synced user's PBX phonebook, shared mailboxes → the company phonebook.

One way (Microsoft 365 is the source of truth), incremental per contact folder where the cloud offers contact
delta. Runs use the shared run machinery of :mod:`flask_pbx365.sync` (``request_run(tenant, "contacts")``, the
CLI's ``sync contacts``, the Contacts tab). Importing this package registers the ``contacts`` kind with the run
machinery and the scheduler.
"""
from __future__ import annotations

from ..sync import register_kind, request_run
from .jobs import run_contacts_sync

KIND = "contacts"


def dispatch_contacts(tenant: str, trigger: str = "schedule"):
    """The scheduler's dispatcher for automatic contacts sync."""
    return request_run(tenant, KIND, trigger=trigger)


def register() -> None:
    """Register contacts sync with the run machinery and the scheduler (idempotent)."""
    from ..scheduler import DISPATCHERS

    register_kind(KIND, run_contacts_sync)
    DISPATCHERS[KIND] = dispatch_contacts


register()

__all__ = ["KIND", "dispatch_contacts", "register", "run_contacts_sync"]
