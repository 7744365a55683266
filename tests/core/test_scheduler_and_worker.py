"""Schedules, the dispatcher, certificate expiry notices, and the RQ worker running inside the app context."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask_pbx365 import scheduler
from flask_pbx365.settings import import_settings


def test_time_of_day_is_in_the_tenants_time_zone():
    after = datetime(2026, 3, 28, 23, 0, tzinfo=timezone.utc)  # Berlin switches to summer time that night
    first = scheduler.next_run("00:00", "Europe/Berlin", after)
    assert first == datetime(2026, 3, 29, 22, 0, tzinfo=timezone.utc)  # midnight CEST
    assert scheduler.next_run("00:00", "UTC", after) == datetime(2026, 3, 29, 0, 0, tzinfo=timezone.utc)


def test_cron_expression():
    after = datetime(2026, 1, 1, 10, 5, tzinfo=timezone.utc)
    assert scheduler.next_run("*/15 * * * *", "UTC", after) == datetime(2026, 1, 1, 10, 15, tzinfo=timezone.utc)


def test_dispatch_fires_each_due_slot_once(app, redis_conn, monkeypatch):
    fired: list[tuple[str, str]] = []
    monkeypatch.setattr(scheduler, "request_run", lambda tenant, kind, trigger: fired.append((tenant, trigger)))
    with app.app_context():
        import_settings("acme", {"user_sync": {"mode": "automatic", "schedule": "*/10 * * * *"}})
        t0 = datetime(2026, 5, 1, 9, 55, tzinfo=timezone.utc)
        assert scheduler.dispatch_due(app, t0) == []             # first sight: remembers, does not fire
        assert scheduler.dispatch_due(app, t0 + timedelta(minutes=4)) == []
        assert scheduler.dispatch_due(app, t0 + timedelta(minutes=5)) == [("acme", "users")]
        assert scheduler.dispatch_due(app, t0 + timedelta(minutes=6)) == []  # same slot: not again
        assert scheduler.dispatch_due(app, t0 + timedelta(minutes=16)) == [("acme", "users")]
        import_settings("acme", {"user_sync": {"mode": "manual"}})
        assert scheduler.dispatch_due(app, t0 + timedelta(minutes=30)) == []
    assert fired == [("acme", "schedule"), ("acme", "schedule")]


def test_certificate_expiry_mails_admins_once_per_window(app, redis_conn):
    from flask_pbx365.keys import generate_key_pair
    from flask_pbx365.models import KeyPair
    from flask_pbx365.state import get_state

    client = app.test_client()
    with app.app_context():
        generate_key_pair("acme")
        now = datetime.now(timezone.utc)
        assert scheduler.send_expiry_notices(app, now) == []
        row = get_state().db.session.query(KeyPair).filter_by(tenant="acme").one()
        row.not_after = now + timedelta(days=25)
        get_state().db.session.commit()
        assert scheduler.send_expiry_notices(app, now) == [("acme", 30)]
        assert scheduler.send_expiry_notices(app, now) == []
        assert scheduler.send_expiry_notices(app, now + timedelta(days=19)) == [("acme", 7)]
    token = app.config["DEMO_API_TOKEN"]
    sent = client.get("/api/tenants/acme/notifications", headers={"Authorization": f"Bearer {token}"}).get_json()
    subjects = [n["subject"] for n in sent if "certificate expires" in n["subject"]]
    assert len(subjects) == 2


def record_app_name() -> str:
    """A job that needs the app context (top-level, takes plain values)."""
    from flask import current_app

    from flask_pbx365.state import get_state

    with get_state().db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    return current_app.import_name


def test_worker_runs_jobs_inside_the_app_context(app, redis_conn):
    from flask_pbx365.runs.queue import get_queue, make_worker

    with app.app_context():
        job = get_queue().enqueue(record_app_name)
    make_worker(app).work(burst=True)
    job.refresh()
    assert job.get_status() == "finished", job.latest_result().exc_string if job.latest_result() else None
    assert job.return_value() == app.import_name
