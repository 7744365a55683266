"""Sync engines (users today) and the run machinery they share.

Entry points for views, the CLI and the scheduler: :func:`request_run`, :func:`confirm_run`, :func:`wait_for`,
:func:`status_json`, :func:`list_runs`, :func:`run_items`. Importing this package registers the ``users`` kind
with the run machinery and with the scheduler's dispatchers.
"""
from __future__ import annotations

from .jobs import run_user_sync
from .runs import (JOB_FUNCTIONS, confirm_run, get_run, list_runs, register_kind, request_run, run_items,
                   status_json, wait_for)


def dispatch_users(tenant: str, trigger: str = "schedule"):
    """The scheduler's dispatcher for automatic user sync."""
    return request_run(tenant, "users", trigger=trigger)


def register() -> None:
    """Register user sync with the run machinery and the scheduler (idempotent)."""
    from ..scheduler import DISPATCHERS

    register_kind("users", run_user_sync)
    DISPATCHERS["users"] = dispatch_users


register()

__all__ = ["JOB_FUNCTIONS", "confirm_run", "dispatch_users", "get_run", "list_runs", "register", "register_kind",
           "request_run", "run_items", "run_user_sync", "status_json", "wait_for"]
