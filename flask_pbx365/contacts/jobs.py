"""The top-level RQ job function of contacts sync: it takes the tenant and the run id, never ORM objects."""
from __future__ import annotations

from ..runs import execute
from .engine import sync_contacts


def run_contacts_sync(tenant: str, run_id: str) -> str | None:
    """Execute contacts sync run ``run_id`` of ``tenant`` (enqueued by :func:`flask_pbx365.runs.request_run`)."""
    return execute(tenant, run_id, sync_contacts)
