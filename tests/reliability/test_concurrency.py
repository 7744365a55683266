"""Concurrency: a manual run in progress absorbs a double "Sync now", a schedule firing and a change notification;
each ends as one run (a real worker executes it while they arrive)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from flask_pbx365 import scheduler
from flask_pbx365.notifications.jobs import process_notifications
from flask_pbx365.runs import list_runs, request_run
from flask_pbx365.settings import import_settings
from tests.sync.conftest import env  # noqa: F401  (the fixture)
from tests.sync.test_runs_cli_and_tab import _stop, _worker


def test_a_running_sync_absorbs_sync_now_a_schedule_and_a_notification(env):  # noqa: F811
    for n in range(30):
        env.add_user(f"busy{n:02d}", f"Busy{n}", "User")
    with env.app.app_context():
        import_settings("acme", {"user_sync": {"mode": "automatic", "schedule": "*/10 * * * *"}})
        t0 = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        t0 -= timedelta(minutes=t0.minute % 10)
        assert scheduler.dispatch_due(env.app, t0 + timedelta(minutes=1)) == []  # first sight: remembers the slot
    env.emulator.add_fault(path=r"/v1\.0/users", skip=1, times=1, delayMs=4000)  # the run is slow mid-read
    worker = _worker(env)
    try:
        first = env.request()
        deadline = time.monotonic() + 30
        while env.status(first["run_id"])["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert env.status(first["run_id"])["status"] == "running"
        assert env.request()["run_id"] == first["run_id"]                  # a double "Sync now"
        with env.app.app_context():
            fired = scheduler.dispatch_due(env.app, t0 + timedelta(minutes=11))  # the next slot comes meanwhile
            assert fired == [("acme", "users")]
            assert process_notifications("acme", [{"subscription_id": "s", "kind": "users",
                                                   "lifecycle": None}]) == ["users"]
            assert request_run("acme", "users", trigger="schedule").id == first["run_id"]
        deadline = time.monotonic() + 60
        while env.status(first["run_id"])["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        _stop(worker)
    assert env.status(first["run_id"])["status"] == "done"
    with env.app.app_context():
        runs = list_runs("acme", "users")
    assert [r.id for r in runs] == [first["run_id"]], [(r.trigger, r.status) for r in runs]
    assert len([u for u in env.synced() if u.startswith("busy")]) == 30
