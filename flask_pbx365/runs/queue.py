"""RQ plumbing: the queue, and a worker that runs every job inside the Flask app's context.

Job functions are top-level and take IDs (tenant keys, run ids), never ORM objects, so they survive pickling and a
worker restart. Views, the CLI and the scheduler enqueue them through :func:`get_queue`.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import sqlalchemy as sa
from flask import Flask
from rq import Queue, Worker

from ..state import get_state

log = logging.getLogger("flask_pbx365.runs")

_PENDING = "pbx365_after_commit"
_HOOKED = "pbx365_after_commit_hooked"

#: How often a worker's thread polls RQ's command channel (stop-job, shutdown).
PUBSUB_POLL_SECONDS = 1


def get_queue(app: Flask | None = None) -> Queue:
    state = get_state(app)
    cfg = state.app.config
    return Queue(cfg["PBX365_QUEUE"], connection=state.redis(), default_timeout=int(cfg["PBX365_JOB_TIMEOUT"]))


def after_commit(action: Callable[[], object], what: str) -> None:
    """Call ``action`` (typically an enqueue) once the current ``db.session`` transaction commits; never after a
    rollback. Work stored in that transaction is thus only announced once it exists; a failing ``action`` is logged
    (``what`` names it) and the stored work waits for the next trigger."""
    session = get_state().db.session()  # the Session behind the scoped session: events are per Session object
    session.info.setdefault(_PENDING, []).append((action, what))
    if not session.info.get(_HOOKED):
        session.info[_HOOKED] = True
        sa.event.listen(session, "after_commit", _after_commit)
        sa.event.listen(session, "after_rollback", _after_rollback)


def _after_commit(session: Any) -> None:
    pending, session.info[_PENDING] = session.info.get(_PENDING) or [], []
    for action, what in pending:
        try:
            action()
        except Exception:  # the commit happened; what it stored is picked up by the next trigger
            log.exception("after commit: %s failed", what)


def _after_rollback(session: Any) -> None:
    session.info[_PENDING] = []


class AppWorker(Worker):
    """An RQ worker whose work horse runs each job inside ``app.app_context()``.

    The work horse is a fork of the worker: it drops the database connections inherited from the parent first,
    because a pooled connection must never be shared across processes.
    """

    flask_app: Flask | None = None

    def subscribe(self) -> None:
        """RQ's command channel, polled every second instead of every 60: closing the channel at shutdown waits
        for the poll in progress, so a burst worker (tests, ``--burst``) would otherwise hang up to a minute."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        handler = getattr(self, "_pubsub_exception_handler", None)
        self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=PUBSUB_POLL_SECONDS, daemon=True,
                                                       **({"exception_handler": handler} if handler else {}))

    def perform_job(self, job: Any, queue: Queue, *args: Any, **kwargs: Any) -> bool:
        app = self.flask_app
        if app is None:
            return super().perform_job(job, queue, *args, **kwargs)
        with app.app_context():
            get_state(app).db.engine.dispose(close=False)
            try:
                return super().perform_job(job, queue, *args, **kwargs)
            finally:
                get_state(app).db.session.remove()


def make_worker(app: Flask, *, name: str | None = None) -> AppWorker:
    state = get_state(app)
    worker = AppWorker([state.app.config["PBX365_QUEUE"]], connection=state.redis(), name=name)
    worker.flask_app = app
    return worker
