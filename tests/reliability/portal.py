"""The demo portal for a whole fault-matrix module (one database, migrated and seeded, with quick retries), and
the process faults every engine's matrix injects: a real worker stopped, Redis restarted or PostgreSQL's
connections dropped while one of its requests hangs."""
from __future__ import annotations

import contextlib
import time
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import sqlalchemy as sa

from tests.conftest import TEST_SECRET
from tests.fixtures_services import fresh_database_url


@contextlib.contextmanager
def module_portal(redis_url: str, database_url_base: str | None, directory) -> Iterator:
    """The demo app on a fresh database (SQLite file in ``directory`` or a PostgreSQL database), disposed after."""
    from demo_app import create_app
    from demo_app.models import db

    with fresh_database_url(database_url_base, directory) as url:
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "test-flask-secret",
                          "PBX365_SECRET_KEY": TEST_SECRET, "PBX365_REDIS_URL": redis_url,
                          "DEMO_EMULATOR_URL": "https://127.0.0.1:9", "DEMO_PUBLIC_URL": "http://portal.test",
                          "DEMO_SBC_URL": "https://sbc.test:8444", "PBX365_MAX_RETRIES": 3,
                          "PBX365_MAX_BACKOFF": 0.2, "PBX365_HTTP_TIMEOUT": 2})
        assert app.test_cli_runner().invoke(args=["demo", "init"]).exit_code == 0
        try:
            yield app
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def worker_mid_run(app, emulator, tenant: str, kind: str, hang: dict, action: Callable[[Any], object]) -> str:
    """Start a real worker on a ``kind`` run of ``tenant`` whose request matching the ``hang`` fault spec hangs
    (``delayMs``); do ``action(proc)`` mid-run (returning ``"dead"`` when it killed the worker); returns the run id.
    The run's lock lives 2 s, so the next run takes a killed one over quickly."""
    from flask_pbx365.runs import request_run
    from tests.sync.test_runs_cli_and_tab import _stop, _worker

    emulator.add_fault(times=1, **hang)
    app.config["PBX365_SYNC_LOCK_TTL"] = 2
    proc = _worker(SimpleNamespace(app=app), PBX365_SYNC_LOCK_TTL="2")
    try:
        with app.app_context():
            run_id = request_run(tenant, kind).id
        wait_for(lambda: run_status(app, tenant, run_id) == "running", 60)
        time.sleep(1.0)
        if action(proc) != "dead":  # a killed worker's run never ends by itself
            wait_for(lambda: run_status(app, tenant, run_id) in ("done", "failed"), 30, ok_on_timeout=True)
    finally:
        _stop(proc)
    emulator.clear_faults()
    return run_id


def run_status(app, tenant: str, run_id: str) -> str | None:
    """The run's status, None while the database cannot be reached (its connections were just dropped)."""
    from flask_pbx365.runs import get_run

    try:
        with app.app_context():
            return get_run(tenant, run_id).status
    except sa.exc.OperationalError:
        return None


def wait_for(condition: Callable[[], bool], timeout: float, ok_on_timeout: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    if not ok_on_timeout:
        raise AssertionError("timed out")


def kill_worker(proc) -> str:
    """SIGKILL the worker and its work horse."""
    from tests.sync.test_runs_cli_and_tab import _kill_hard

    _kill_hard(proc)
    return "dead"


def restart_redis(redis_conn) -> Callable[[Any], None]:
    """What a Redis restart without persistence does: every connection dropped, every key (queue, locks,
    progress) gone."""
    def restart(_proc) -> None:
        redis_conn.execute_command("CLIENT", "KILL", "TYPE", "normal")
        redis_conn.flushall()
    return restart


def drop_postgres(url: str) -> Callable[[Any], None]:
    """Terminate every other session of the database, the worker's among them."""
    def drop(_proc) -> None:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            dropped = conn.execute(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        engine.dispose()
        assert dropped >= 1
    return drop
