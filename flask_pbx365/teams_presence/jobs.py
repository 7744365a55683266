"""The RQ job function of ``sync teams-presence``: takes the tenant and the run id, never ORM objects.

(The PBX → Teams job, :func:`flask_pbx365.teams_presence.calls.push_call_states`, lives beside the code that
queues it.)
"""
from __future__ import annotations

from ..runs import execute
from .engine import sync_teams_presence


def run_teams_presence_sync(tenant: str, run_id: str) -> str | None:
    """Execute Teams → PBX poll ``run_id`` of ``tenant`` (enqueued by ``request_run(tenant, "teams_presence")``)."""
    return execute(tenant, run_id, sync_teams_presence)
