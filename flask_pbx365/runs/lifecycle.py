"""Run lifecycle shared by every feature with runs: request (or join), confirm, execute under the lock, wait.

A run is a :class:`~flask_pbx365.models.SyncRun` row plus an RQ job that takes the tenant and the run id: the
job function is the :attr:`~flask_pbx365.feature.Feature.job` of the feature whose name is the run's kind. A
request while a run of the same kind (and the same dry-run flag) is queued or running joins it.
"""
from __future__ import annotations

import gc
import json
import logging
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import sqlalchemy as sa
from flask import current_app

from .. import signals
from ..exceptions import ConfigurationError, PBX365Error
from ..models import SyncRun, SyncRunItem, clip
from ..rows import insert_rows
from ..state import get_state
from ..tenants import require_connection
from .history import (
    ACTIVE,
    get_run,
    progress_key,
    refresh_if_stale,
    status_json,
    utcnow,
)
from .locks import acquire, release
from .queue import get_queue

log = logging.getLogger("flask_pbx365.runs")


def _session():
    return get_state().db.session


#: Triggers that start runs without a person: they join a held run instead of holding (and mailing) again.
AUTOMATIC_TRIGGERS = ("schedule", "notification")


def _redis():
    return get_state().redis()


def _enqueue(run: SyncRun) -> None:
    fn = get_state().feature(run.kind).job
    cfg = current_app.config
    job = get_queue().enqueue(fn, run.tenant, run.id, job_timeout=int(cfg["PBX365_JOB_TIMEOUT"]),
                              result_ttl=int(cfg["PBX365_JOB_RESULT_TTL"]),
                              description=f"pbx365 {run.kind} sync of {run.tenant} (run {run.id})")
    run.progress = {**(run.progress or {}), "job_id": job.id}
    _session().commit()


def request_run(tenant: str, kind: str = "users", *, dry_run: bool = False, trigger: str = "manual") -> SyncRun:
    """Start a run of ``kind`` for ``tenant``, or join the one already queued or running (same dry-run flag).

    A scheduled or notification-triggered run also joins a run held by the mass-change guard: the hold stays
    one hold, announced once, until the admin confirms it (or starts a run by hand, which replaces it).
    """
    feature = get_state().feature(kind)
    if feature is None or not feature.runs:
        raise ConfigurationError(f"{kind!r} is not a sync this portal offers (switched off with "
                                 "PBX365_DISABLED_FEATURES, or not a kind of run).")
    require_connection(tenant)
    with _redis().lock(f"pbx365:sync:{tenant}:{kind}:request", timeout=30, blocking_timeout=30):
        active = _session().scalars(sa.select(SyncRun).where(
            SyncRun.tenant == tenant, SyncRun.kind == kind, SyncRun.status.in_(ACTIVE),
            SyncRun.dry_run.is_(dry_run)).order_by(SyncRun.created_at.desc())).all()
        for run in active:
            if not refresh_if_stale(run):
                return run
        if trigger in AUTOMATIC_TRIGGERS and not dry_run:
            held = _held(tenant, kind)
            if held:
                return held[0]
        run = SyncRun(tenant=tenant, kind=kind, status="queued", dry_run=dry_run, trigger=trigger, counts={},
                      progress={"phase": "queued"}, message="")
        _session().add(run)
        _session().commit()
        _enqueue(run)
        return run


def _held(tenant: str, kind: str | None = None) -> list[SyncRun]:
    """Runs of ``tenant`` held by the mass-change guard (of ``kind``), newest first."""
    query = sa.select(SyncRun).where(SyncRun.tenant == tenant, SyncRun.status == "waiting_confirmation",
                                     SyncRun.dry_run.is_(False))
    if kind is not None:
        query = query.where(SyncRun.kind == kind)
    return list(_session().scalars(query.order_by(SyncRun.created_at.desc())))


def confirm_run(tenant: str, run_id: str | None = None, kind: str | None = None) -> SyncRun:
    """The admin's confirmation of a run held by the mass-change guard: it runs again and applies its plan.

    Without ``run_id`` the held run of ``kind`` is meant; without either, the one held run of the tenant, and an
    error naming the kinds when runs of several kinds are held (a confirmation must never pick one by guess).
    """
    if run_id:
        run = get_run(tenant, run_id)
        if run is None:
            raise ConfigurationError(f"Tenant {tenant!r} has no sync run {run_id}.")
        if kind is not None and run.kind != kind:
            raise ConfigurationError(f"Run {run_id} is a {run.kind} sync, not {kind}.")
    else:
        held = _held(tenant, kind)
        if not held:
            what = f"{kind} sync run" if kind else "sync run"
            raise ConfigurationError(f"No {what} of tenant {tenant!r} is waiting for confirmation.")
        kinds = sorted({r.kind for r in held})
        if len(kinds) > 1:
            raise ConfigurationError(f"Runs of {' and '.join(kinds)} are waiting for confirmation in tenant "
                                     f"{tenant!r}; name the kind (--kind) or the run id.")
        run = held[0]
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


class RunContext:
    """What an engine gets while executing a run: the run, progress reporting, detail items and counts."""

    def __init__(self, run: SyncRun):
        self.run = run
        self.redis = _redis()
        self.counts: dict[str, int] = {name: 0 for name in SyncRun.COUNT_NAMES}
        self.progress: dict = {"phase": "starting", "pages": 0, "read": 0, "done": 0, "total": 0}
        self._items: list[dict] = []
        self._items_at = utcnow()  # the time of the batch the items belong to (one per flush)
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
        self._items.append(dict(
            run_id=self.run.id, action=action, object_id=object_id or user.get("id"),
            user_principal_name=clip(upn or user.get("userPrincipalName")),
            display_name=clip(name or user.get("displayName")), extension=clip(extension, 32),
            detail=detail[:2000], created_at=self._items_at))

    def flush(self) -> None:
        """Stage the recorded items, counts and progress in the session (the caller commits with its batch)."""
        session = _session()
        if self._items:  # one executemany per batch, not an ORM object per user
            insert_rows(session, SyncRunItem.__table__, self._items)
        self._items = []
        self._items_at = utcnow()
        self.run.counts = dict(self.counts)
        self.run.progress = {**(self.run.progress or {}), **self.progress}
        self.report(force=True)

    def commit(self) -> None:
        self.flush()
        _session().commit()


Engine = Callable[[RunContext], tuple[str, str]]

#: Allocations between two young-generation collections during a run (Python's default is 700).
RUN_GC_THRESHOLD = 20000


@contextmanager
def collector_for_bulk_work() -> Iterator[None]:
    """Python's cycle collector tuned for a run: a run allocates millions of short-lived objects (parsed users,
    row tuples) beside a large live set (links, seen ids), and at the default threshold the collector traverses
    that live set again and again: about a quarter of a 100k-user sync. What was loaded before the run is frozen
    (never garbage, never traversed again). Memory stays bounded: the collector still runs, less often."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(RUN_GC_THRESHOLD, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


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
    beat = acquire(run)
    try:
        session.refresh(run)
        run.status, run.started_at, run.message = "running", utcnow(), ""
        if not run.dry_run:
            supersede_held(tenant, run.kind, run)
        session.commit()
        ctx = RunContext(run)
        ctx.report(force=True)
        try:
            with collector_for_bulk_work():
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
        release(run, beat)
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
