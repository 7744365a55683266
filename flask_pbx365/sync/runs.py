"""Run lifecycle shared by every sync kind: request (or join), the per-tenant Redis lock, progress, confirm.

A run is a :class:`~flask_pbx365.models.SyncRun` row plus an RQ job that takes the tenant and the run id. Only one
run of a kind executes per tenant at a time: the job holds ``pbx365:sync:{tenant}:{kind}:lock`` (value: the run
id) and a heartbeat thread keeps extending it, so a killed worker's lock expires after ``PBX365_SYNC_LOCK_TTL``
seconds. A request while a run of the same kind (and the same dry-run flag) is queued or running joins it.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Callable, Iterator

import sqlalchemy as sa
from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job

from .. import signals
from ..exceptions import ConfigurationError, PBX365Error
from ..jobs import get_queue
from ..models import SyncRun, SyncRunItem
from ..state import get_state

log = logging.getLogger("flask_pbx365.sync")

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "waiting_confirmation")
KIND_LABELS = {"users": "User sync", "contacts": "Contact sync", "presence": "Calendar presence sync"}

#: kind -> top-level job function ``fn(tenant, run_id)``; other sync kinds register theirs with
#: :func:`register_kind`.
JOB_FUNCTIONS: dict[str, Callable[[str, str], object]] = {}

STALE_MESSAGE = ("The worker running this sync stopped before it finished (it crashed or was stopped). Changes "
                 "applied before that are kept; the next run completes the work.")


def register_kind(kind: str, job_function: Callable[[str, str], object]) -> None:
    """Make ``sync <kind>`` runnable: ``job_function(tenant, run_id)`` must be a top-level function."""
    JOB_FUNCTIONS[kind] = job_function


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _session():
    return get_state().db.session


def _redis():
    return get_state().redis()


def lock_ttl() -> int:
    return int(current_app.config["PBX365_SYNC_LOCK_TTL"])


def lock_key(tenant: str, kind: str) -> str:
    return f"pbx365:sync:{tenant}:{kind}:lock"


def progress_key(run_id: str) -> str:
    return f"pbx365:sync:progress:{run_id}"


# --- reading runs ------------------------------------------------------------------------------------------------


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


# --- liveness ----------------------------------------------------------------------------------------------------


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


# --- requesting runs ---------------------------------------------------------------------------------------------


def _enqueue(run: SyncRun) -> None:
    fn = JOB_FUNCTIONS[run.kind]
    cfg = current_app.config
    job = get_queue().enqueue(fn, run.tenant, run.id, job_timeout=int(cfg["PBX365_JOB_TIMEOUT"]),
                              result_ttl=int(cfg["PBX365_JOB_RESULT_TTL"]),
                              description=f"pbx365 {run.kind} sync of {run.tenant} (run {run.id})")
    run.progress = {**(run.progress or {}), "job_id": job.id}
    _session().commit()


def request_run(tenant: str, kind: str = "users", *, dry_run: bool = False, trigger: str = "manual") -> SyncRun:
    """Start a run of ``kind`` for ``tenant``, or join the one already queued or running (same dry-run flag)."""
    if kind not in JOB_FUNCTIONS:
        raise ConfigurationError(f"{KIND_LABELS.get(kind, kind)} is not available yet in this version of the "
                                 "Microsoft 365 integration.")
    from ..tenants import require_connection

    require_connection(tenant)
    with _redis().lock(f"pbx365:sync:{tenant}:{kind}:request", timeout=30, blocking_timeout=30):
        active = _session().scalars(sa.select(SyncRun).where(
            SyncRun.tenant == tenant, SyncRun.kind == kind, SyncRun.status.in_(ACTIVE),
            SyncRun.dry_run.is_(dry_run)).order_by(SyncRun.created_at.desc())).all()
        for run in active:
            if not refresh_if_stale(run):
                return run
        run = SyncRun(tenant=tenant, kind=kind, status="queued", dry_run=dry_run, trigger=trigger, counts={},
                      progress={"phase": "queued"}, message="")
        _session().add(run)
        _session().commit()
        _enqueue(run)
        return run


def confirm_run(tenant: str, run_id: str | None = None) -> SyncRun:
    """The admin's confirmation of a run held by the mass-change guard: it runs again and applies its plan."""
    if run_id:
        run = get_run(tenant, run_id)
        if run is None:
            raise ConfigurationError(f"Tenant {tenant!r} has no sync run {run_id}.")
    else:
        run = _session().scalars(sa.select(SyncRun).where(
            SyncRun.tenant == tenant, SyncRun.status == "waiting_confirmation")
            .order_by(SyncRun.created_at.desc()).limit(1)).first()
        if run is None:
            raise ConfigurationError(f"No sync run of tenant {tenant!r} is waiting for confirmation.")
    if run.status != "waiting_confirmation":
        raise ConfigurationError(f"Run {run.id} is {run.status.replace('_', ' ')}, not waiting for confirmation; "
                                 "only a run held by the mass-change guard can be confirmed.")
    held = int((run.progress or {}).get("held_removals") or 0)
    _session().execute(sa.delete(SyncRunItem).where(SyncRunItem.run_id == run.id))
    run.status = "queued"
    run.counts = {}
    run.message = f"Confirmed: up to {held} users may be disabled or deleted."
    run.progress = {"phase": "queued", "confirmed": held}
    run.finished_at = None
    _session().commit()
    _enqueue(run)
    return run


def supersede_held(tenant: str, kind: str, newer: SyncRun) -> None:
    """A newer real run replaces older held runs: they can no longer be confirmed."""
    for run in _session().scalars(sa.select(SyncRun).where(
            SyncRun.tenant == tenant, SyncRun.kind == kind, SyncRun.status == "waiting_confirmation",
            SyncRun.id != newer.id)):
        run.status = "failed"
        run.message = f"Replaced by the newer run {newer.id}; confirm that one if it is held too."
        run.finished_at = utcnow()


# --- executing runs ----------------------------------------------------------------------------------------------


class RunContext:
    """What an engine gets while executing a run: the run, progress reporting, detail items and counts."""

    def __init__(self, run: SyncRun):
        self.run = run
        self.redis = _redis()
        self.counts: dict[str, int] = {name: 0 for name in SyncRun.COUNT_NAMES}
        self.progress: dict = {"phase": "starting", "pages": 0, "read": 0, "done": 0, "total": 0}
        self._items: list[SyncRunItem] = []
        self._last_push = 0.0

    @property
    def confirmed(self) -> int | None:
        value = (self.run.progress or {}).get("confirmed")
        return int(value) if value is not None else None

    def report(self, force: bool = False, **changes) -> None:
        """Update progress; pushed to Redis at most every 0.2 s (and always with ``force``)."""
        self.progress.update(changes)
        now = time.monotonic()
        if force or now - self._last_push >= 0.2:
            self._last_push = now
            self.redis.set(progress_key(self.run.id), json.dumps(self.progress), ex=86400)

    def item(self, action: str, user: dict | None = None, *, extension: str | None = None, detail: str = "",
             object_id: str | None = None, upn: str | None = None, name: str | None = None) -> None:
        """Record one user's outcome and count it (``error`` counts as ``errors``)."""
        user = user or {}
        self.counts["errors" if action == "error" else action] += 1
        self._items.append(SyncRunItem(
            run_id=self.run.id, action=action, object_id=object_id or user.get("id"),
            user_principal_name=(upn or user.get("userPrincipalName") or None),
            display_name=(name or user.get("displayName") or None), extension=extension, detail=detail[:2000]))

    def flush(self) -> None:
        """Stage the recorded items, counts and progress in the session (the caller commits with its batch)."""
        session = _session()
        session.add_all(self._items)
        self._items = []
        self.run.counts = dict(self.counts)
        self.run.progress = {**(self.run.progress or {}), **self.progress}
        self.report(force=True)

    def commit(self) -> None:
        self.flush()
        _session().commit()


class _Heartbeat(threading.Thread):
    """Keeps the run's lock alive while the engine works (a killed process stops extending it)."""

    def __init__(self, redis, key: str, owner: str, ttl: int):
        super().__init__(daemon=True, name=f"pbx365-heartbeat-{owner[:8]}")
        self.redis, self.key, self.owner, self.ttl = redis, key, owner, ttl
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(max(self.ttl / 3, 0.2)):
            try:
                if (self.redis.get(self.key) or b"").decode() != self.owner:
                    return
                self.redis.pexpire(self.key, int(self.ttl * 1000))
            except Exception:  # Redis hiccup: the next beat tries again
                log.warning("sync lock heartbeat failed", exc_info=True)


def _acquire(run: SyncRun) -> _Heartbeat:
    """Wait until this run holds its tenant's lock (another run of the kind may still be executing)."""
    redis, key, ttl = _redis(), lock_key(run.tenant, run.kind), lock_ttl()
    deadline = time.monotonic() + int(current_app.config["PBX365_JOB_TIMEOUT"])
    while not redis.set(key, run.id, nx=True, px=ttl * 1000):
        if (redis.get(key) or b"").decode() == run.id:
            break
        if time.monotonic() > deadline:
            raise ConfigurationError("Another sync of this tenant kept running for longer than the job timeout.")
        time.sleep(0.5)
    beat = _Heartbeat(redis, key, run.id, ttl)
    beat.start()
    return beat


def _release(run: SyncRun, beat: _Heartbeat) -> None:
    beat.stopped.set()
    redis, key = _redis(), lock_key(run.tenant, run.kind)
    if (redis.get(key) or b"").decode() == run.id:
        redis.delete(key)


Engine = Callable[[RunContext], tuple[str, str]]


def execute(tenant: str, run_id: str, engine: Engine) -> str | None:
    """Run ``engine`` for the run under the tenant's lock and record how it ended; returns the final status.

    ``engine(ctx)`` returns ``(status, message)`` with status ``done`` or ``waiting_confirmation``; a
    :class:`PBX365Error` ends the run as ``failed`` with the error's message.
    """
    session = _session()
    run = session.get(SyncRun, run_id)
    if run is None or run.tenant != tenant or run.status != "queued":
        log.info("sync run %s is not queued any more; nothing to do", run_id)
        return run.status if run is not None else None
    beat = _acquire(run)
    try:
        session.refresh(run)
        run.status, run.started_at, run.message = "running", utcnow(), ""
        if not run.dry_run:
            supersede_held(tenant, run.kind, run)
        session.commit()
        ctx = RunContext(run)
        ctx.report(force=True)
        try:
            status, message = engine(ctx)
        except PBX365Error as exc:
            session.rollback()
            status, message = "failed", str(exc)
        except Exception as exc:  # an engine bug must still end the run visibly
            log.exception("sync run %s crashed", run_id)
            session.rollback()
            status, message = "failed", f"Internal error ({type(exc).__name__}: {exc}); see the worker's log."
        run = session.get(SyncRun, run_id)
        ctx.run = run
        ctx.progress["phase"] = "finished"
        ctx.flush()
        run.status, run.message, run.finished_at = status, message, utcnow()
        session.commit()
    finally:
        _release(run, beat)
    signals.sync_finished.send(current_app._get_current_object(), tenant=tenant, run_id=run_id, kind=run.kind,
                               status=run.status)
    return run.status


def wait_for(tenant: str, run_id: str, on_progress: Callable[[dict], None] | None = None,
             poll: float = 0.3, timeout: float | None = None) -> dict:
    """Follow a run until it is no longer queued or running; returns its final :func:`status_json`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        _session().expire_all()
        run = get_run(tenant, run_id)
        if run is None:
            raise ConfigurationError(f"Sync run {run_id} disappeared.")
        data = status_json(run)
        if on_progress:
            on_progress(data)
        if data["status"] not in ACTIVE:
            return data
        if deadline is not None and time.monotonic() > deadline:
            return data
        _session().commit()  # end the read transaction so the next poll sees the worker's commits
        time.sleep(poll)


def iter_kinds() -> Iterator[str]:
    yield from JOB_FUNCTIONS
