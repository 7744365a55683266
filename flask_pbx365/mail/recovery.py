"""Recovering mail whose job was lost: the scheduler pass that enqueues such messages again.

A message is stored before its job exists (:mod:`.outbox`), so the database is the truth. Two things lose a job:
Redis restarting without persistence (or an enqueue that failed) leaves a message ``queued`` with no job, and a
worker killed mid-send leaves it ``sending``. The first is simply enqueued again (the job claims a message once,
so a duplicate job sends nothing); the second is enqueued once its job's timeout has surely passed, and that job
looks in Sent Items (and Drafts) before it sends anything (:func:`~.graph_send.went_out_before`).
"""
from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from rq.job import Job, JobStatus

from ..models import MailOutboxMessage
from ..state import get_state
from .outbox import enqueue
from .store import abandoned_before, job_id, utcnow

log = logging.getLogger("flask_pbx365.mail")

#: Messages looked at per scheduler pass (the oldest first); the rest wait for the next pass.
RECOVER_BATCH = 500

_WAITING = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def recover_messages(app: Flask) -> list[str]:
    """Scheduler pass: enqueue again every message ``queued`` for ``PBX365_MAIL_RECOVER_SECONDS`` with no job
    waiting or running for it, and every message a dead worker left ``sending``; returns their ids."""
    state = get_state(app)
    now = utcnow()
    queued_before = now - timedelta(seconds=int(app.config["PBX365_MAIL_RECOVER_SECONDS"]))
    m = MailOutboxMessage
    rows = state.db.session.execute(
        sa.select(m.id, m.tenant, m.status).where(sa.or_(
            sa.and_(m.status == "queued", m.status_at < queued_before),
            sa.and_(m.status == "sending", m.status_at < abandoned_before(now))))
        .order_by(m.status_at).limit(RECOVER_BATCH)).all()
    state.db.session.rollback()
    if not rows:
        return []
    jobs = Job.fetch_many([job_id(row.id) for row in rows], connection=state.redis())
    recovered = []
    for row, job in zip(rows, jobs):
        status = job.get_status(refresh=False) if job is not None else None
        # A dead worker's job still reads "started"; only a job that waits for a worker is trusted then.
        if status in _WAITING or (status == JobStatus.STARTED and row.status == "queued"):
            continue
        enqueue(row.tenant, row.id)
        recovered.append(row.id)
        log.info("mail %s of tenant %s was left %s without a job: enqueued again", row.id, row.tenant, row.status)
    return recovered
