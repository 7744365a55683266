"""The RQ job function of ``sync presence``: takes the tenant and the run id, never ORM objects."""
from __future__ import annotations

from ..runs import execute
from .engine import sync_presence


def run_presence_sync(tenant: str, run_id: str) -> str | None:
    """Execute calendar presence run ``run_id`` of ``tenant`` (enqueued by ``request_run(tenant, "presence")``)."""
    return execute(tenant, run_id, sync_presence)
