"""When runs are due, and the dispatcher behind ``flask pbx365 scheduler``.

Each switched-on feature with runs says when its runs are due (:attr:`flask_pbx365.feature.Feature.schedule`);
the slots are computed by :mod:`flask_pbx365.runs.schedule`. The dispatcher is idempotent across restarts and
across several dispatchers: each due slot is claimed once in Redis (``SET NX``).
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from flask import Flask

from .exceptions import PBX365Error
from .host import MailMessage
from .models import KeyPair
from .notifications import scheduler_pass as subscriptions_pass
from .runs import request_run
from .runs.schedule import next_run, previous_run
from .settings import defaults, get_settings, stored_settings
from .state import get_state

log = logging.getLogger("flask_pbx365.scheduler")


def schedules(tenant: str) -> dict[str, tuple[str, str] | None]:
    """kind -> (schedule, time zone) for the kinds that run automatically; ``None`` otherwise."""
    return _schedules(get_settings(tenant))


def _schedules(settings: dict) -> dict[str, tuple[str, str] | None]:
    return {f.name: f.schedule(settings) if f.schedule else None for f in get_state().run_features}


def next_runs(tenant: str, now: datetime | None = None) -> dict[str, str | None]:
    now = now or datetime.now(timezone.utc)
    return {kind: next_run(*spec, now).isoformat() if spec else None for kind, spec in schedules(tenant).items()}


def dispatch_due(app: Flask, now: datetime | None = None) -> list[tuple[str, str]]:
    """Enqueue every run whose slot has come; returns the (tenant, kind) pairs enqueued."""
    now = now or datetime.now(timezone.utc)
    state = get_state(app)
    redis = state.redis()
    started: list[tuple[str, str]] = []
    tenants = [tenant.key for tenant in state.host.list_tenants()]
    # One query for every tenant's settings: a pass over 1,000 tenants with nothing due stays in milliseconds.
    stored = stored_settings(tenants)
    unconfigured = _schedules(defaults())
    for tenant in tenants:
        for kind, spec in (_schedules(stored[tenant]) if tenant in stored else unconfigured).items():
            if spec is None:
                continue
            slot = previous_run(*spec, now + timedelta(seconds=1))
            key = f"pbx365:schedule:{tenant}:{kind}"
            last = redis.get(key)
            if last is None:  # first sight: remember the slot, don't fire a run that was due before we knew
                redis.set(key, slot.isoformat())
                continue
            if last.decode() >= slot.isoformat():
                continue
            if redis.set(f"{key}:{slot.isoformat()}", "1", nx=True, ex=86400 * 2):
                redis.set(key, slot.isoformat())
                try:
                    request_run(tenant, kind, trigger="schedule")
                except PBX365Error as exc:  # one tenant's broken setup must not stop the others' schedules
                    log.warning("tenant %s: scheduled %s run not started: %s", tenant, kind, exc)
                    continue
                started.append((tenant, kind))
    return started


def send_expiry_notices(app: Flask, now: datetime | None = None) -> list[tuple[str, int]]:
    """Mail the tenant's admins once when the active certificate enters each warning window (30, 7 days)."""
    now = now or datetime.now(timezone.utc)
    state = get_state(app)
    sent: list[tuple[str, int]] = []
    windows = sorted(app.config["PBX365_CERT_WARNING_DAYS"])
    for row in state.db.session.query(KeyPair).filter_by(active=True):
        days_left = (row.not_after - now).days
        due = [d for d in windows if days_left < d and d not in (row.expiry_notices or [])]
        if not due:
            continue
        window = min(due)
        recipients = state.host.admin_emails(row.tenant)
        if recipients:
            state.host.send_mail(row.tenant, MailMessage(
                to=recipients,
                subject=f"Microsoft 365 integration: certificate expires in {max(days_left, 0)} days",
                body=(f"The certificate the PBX uses to reach Microsoft 365 (SHA-1 {row.sha1.upper()}) expires on "
                      f"{row.not_after:%Y-%m-%d}. Open Microsoft 365 integration > Configure, generate a new key "
                      "pair, upload its public_key.pem in Entra (Certificates & secrets) and switch to it.")))
        row.expiry_notices = sorted({*(row.expiry_notices or []), *due})
        sent.append((row.tenant, window))
    state.db.session.commit()
    return sent


def run_once(app: Flask) -> None:
    """One scheduler pass: due runs, certificate expiry notices, change-notification subscriptions, and each
    feature's own pass (:attr:`~flask_pbx365.feature.Feature.scheduler_pass`)."""
    dispatch_due(app)
    send_expiry_notices(app)
    subscriptions_pass(app)
    for feature in get_state(app).features:
        if feature.scheduler_pass is not None:
            try:
                feature.scheduler_pass(app)
            except PBX365Error as exc:
                log.warning("scheduler pass of %s failed: %s", feature.name, exc)


def run_forever(app: Flask, interval: float, stop: Callable[[], bool] = lambda: False) -> None:
    while not stop():
        with app.app_context():
            try:
                run_once(app)
            except Exception:  # keep dispatching: one tenant's failure must not stop the others' schedules
                log.exception("scheduler pass failed")
            finally:
                get_state(app).db.session.remove()
        time.sleep(interval)


__all__ = ["dispatch_due", "next_run", "next_runs", "previous_run", "run_forever", "run_once", "schedules",
           "send_expiry_notices"]
