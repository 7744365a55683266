"""Reading runs: one run, a tenant's history, a run's per-item details, live progress, and liveness.

A run that looks active but whose worker is gone (a killed process lets its lock expire; a queued job that left
RQ) is marked failed when read, so a status never claims a run that nobody executes.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlalchemy as sa
from rq.exceptions import NoSuchJobError
from rq.job import Job

from ..models import SyncRun, SyncRunItem
from ..state import get_state
from .locks import lock_key

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "waiting_confirmation")

STALE_MESSAGE = ("The worker running this sync stopped before it finished (it crashed or was stopped). Changes "
                 "applied before that are kept; the next run completes the work.")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _session():
    return get_state().db.session


def _redis():
    return get_state().redis()


def progress_key(run_id: str) -> str:
    return f"pbx365:sync:progress:{run_id}"


def get_run(tenant: str, run_id: str) -> SyncRun | None:
    run = _session().get(SyncRun, run_id)
    return run if run is not None and run.tenant == tenant else None


def list_runs(tenant: str, kind: str | None = None, limit: int = 20) -> list[SyncRun]:
    query = sa.select(SyncRun).where(SyncRun.tenant == tenant)
    if kind:
        query = query.where(SyncRun.kind == kind)
    return list(_session().scalars(query.order_by(SyncRun.created_at.desc()).limit(limit)))


def run_items(run_id: str, action: str | None = None, search: str = "", limit: int = 200,
              offset: int = 0) -> tuple[list[SyncRunItem], int]:
    """A page of the run's per-user details and the total number matching."""
    query = sa.select(SyncRunItem).where(SyncRunItem.run_id == run_id)
    if action:
        query = query.where(SyncRunItem.action == action)
    if search:
        like = f"%{search.lower()}%"
        query = query.where(sa.or_(sa.func.lower(SyncRunItem.display_name).like(like),
                                   sa.func.lower(SyncRunItem.user_principal_name).like(like),
                                   SyncRunItem.extension.like(like)))
    total = _session().scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = _session().scalars(query.order_by(SyncRunItem.id).limit(limit).offset(offset))
    return list(rows), int(total)


def progress_of(run: SyncRun) -> dict:
    """Live progress (Redis) of an active run, else the last progress saved with the run."""
    data = dict(run.progress or {})
    if run.status in ACTIVE:
        raw = _redis().get(progress_key(run.id))
        if raw:
            data.update(json.loads(raw))
    return data


def status_json(run: SyncRun) -> dict:
    """The ``sync --json`` object plus ``progress`` (phase, pages, read, done, total, percent) and timestamps."""
    refresh_if_stale(run)
    data = run.as_json()
    progress = progress_of(run)
    total, done = int(progress.get("total") or 0), int(progress.get("done") or 0)
    percent = 100 if run.status in FINISHED else (min(99, done * 100 // total) if total else None)
    data.update(dry_run=run.dry_run, trigger=run.trigger,
                progress={k: progress.get(k) for k in ("phase", "pages", "read", "done", "total")}
                | {"percent": percent},
                created_at=run.created_at.isoformat() if run.created_at else None,
                started_at=run.started_at.isoformat() if run.started_at else None,
                finished_at=run.finished_at.isoformat() if run.finished_at else None)
    return data



# --- liveness ------------------------------------------------------------------------------------------------------


def _job_alive(job_id: str | None) -> bool:
    if not job_id:
        return False
    try:
        job = Job.fetch(job_id, connection=_redis())
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) in ("queued", "deferred", "scheduled", "started")


def is_alive(run: SyncRun) -> bool:
    """True while a queued run's job waits in RQ, or a running run's worker keeps its lock."""
    if run.status == "running":
        owner = _redis().get(lock_key(run.tenant, run.kind))
        return owner is not None and owner.decode() == run.id
    if run.status == "queued":
        return _job_alive((run.progress or {}).get("job_id"))
    return False


def refresh_if_stale(run: SyncRun) -> bool:
    """Mark an active run whose worker is gone as failed; True when it did."""
    if run.status not in ACTIVE or is_alive(run):
        return False
    run.status = "failed"
    run.message = STALE_MESSAGE
    run.finished_at = utcnow()
    _session().commit()
    return True


def prune_quiet_runs(tenant: str, kind: str, keep: int, current: str | None = None) -> int:
    """Delete the tenant's finished runs of ``kind`` that changed nothing, but the newest ``keep`` (frequent polls
    would otherwise fill the history with empty runs); returns how many went."""
    session = get_state().db.session
    quiet = [run for run in session.scalars(sa.select(SyncRun).where(
        SyncRun.tenant == tenant, SyncRun.kind == kind, SyncRun.status == "done", SyncRun.id != (current or ""))
        .order_by(SyncRun.created_at.desc())) if not any((run.counts or {}).values())][keep:]
    ids = [run.id for run in quiet]
    if ids:
        session.execute(sa.delete(SyncRunItem).where(SyncRunItem.run_id.in_(ids)))
        session.execute(sa.delete(SyncRun).where(SyncRun.id.in_(ids)))
    return len(ids)
