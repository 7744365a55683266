"""The fault matrix of mail: every email is delivered exactly once, and its status says so, whatever fault hits
its requests, its worker, Redis or the database.

HTTP faults are injected on each request that hands a message to Microsoft (``sendMail`` of a small message; the
draft's creation and its ``send`` for a large voicemail): each must end ``sent``, once in the emulator's outbox,
with no draft left behind, and without the admin's help. Process faults (the worker SIGKILLed mid-send, Redis
restarting, the PostgreSQL connection dropping) leave a message ``queued`` without a job or ``sending`` by a dead
worker: the scheduler's pass recovers it, and Sent Items decides whether it still has to go.
"""
from __future__ import annotations

import re
import time
from typing import Callable

import pytest
import sqlalchemy as sa

from tests.mail.conftest import MailEnv
from tests.sync.test_runs_cli_and_tab import _kill_hard, _stop, _worker

LARGE = 7_500_000
GRAPH_ERROR = '{"error": {"code": "%s", "message": "%s"}}'
TOKEN_EXPIRED = GRAPH_ERROR % ("InvalidAuthenticationToken", "Access token has expired.")

#: fault name -> the fault's fields (``times`` 1: the retry or the reconciliation gets the normal answer).
FAULTS = {
    "429 with Retry-After": {"status": 429, "retryAfter": 0},
    "503": {"status": 503},
    "504": {"status": 504},
    "reset before the request": {"reset": "before"},
    "reset after the request": {"reset": "after"},
    "slower than the timeout": {"delayMs": 2500},
    "malformed JSON answer": {"body": '{"id": '},
    "token expired": {"status": 401, "body": TOKEN_EXPIRED},
}

#: the request the fault hits -> (method, path regex, how the message is sent).
TARGETS = {
    "sendMail": ("POST", r"/sendMail$", "small"),
    "draft creation": ("POST", r"/users/[^/]+/messages$", "large"),
    "draft send": ("POST", r"/messages/[^/]+/send$", "large"),
}


def send(env: MailEnv, size: str) -> None:
    if size == "small":
        env.api("POST", "/missed-call", json={"extension": "101", "caller": "42"})
    else:
        env.api("POST", "/voicemail", json={"extension": "101", "caller": "+15551234567", "wav_bytes": LARGE})


def statuses(env: MailEnv) -> list[str]:
    """The statuses of the tenant's messages in the extension's outbox (the host's notification only learns the
    end)."""
    from flask_pbx365.mail import list_messages

    with env.app.app_context():
        statuses = [m.status for m in list_messages(env.tenant)]
        env.app.extensions["pbx365"].db.session.remove()
    return statuses


def assert_sent_once(env: MailEnv) -> None:
    notes = env.notifications()
    assert [(n["transport"], n["status"], n["error"]) for n in notes] == [("microsoft365", "sent", None)], notes
    assert len(env.outbox()) == 1, "delivered exactly once"
    assert env.emulator.drafts(env.tid) == [], "no draft left behind"


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_http_fault_on_each_send_request_still_delivers_exactly_once(mail_env, fault, target):
    env = mail_env
    env.enable()
    method, path, size = TARGETS[target]
    spec = dict(FAULTS[fault])
    if fault == "malformed JSON answer":  # a success status with a garbled body, as a truncated answer looks
        spec["status"] = 201 if target == "draft creation" else 200
    if fault == "slower than the timeout":
        env.app.config["PBX365_HTTP_TIMEOUT"] = 1
    env.emulator.add_fault(method=method, path=path, times=1, **spec)
    send(env, size)
    env.work()

    assert_sent_once(env)
    if "delayMs" not in spec:
        answered = [s for m, p, s in env.graph_calls() if m == method and re.search(path, p)]
        assert spec.get("status", 0) in answered, f"the request log shows the fault ({answered})"


def test_an_email_whose_job_redis_lost_is_enqueued_again_by_the_scheduler(mail_env, redis_conn):
    from flask_pbx365.mail.recovery import recover_messages

    env = mail_env
    env.enable()
    send(env, "small")
    redis_conn.flushall()  # Redis restarted without persistence: the queued job is gone
    env.work()
    assert statuses(env) == ["queued"]

    with env.app.app_context():
        assert recover_messages(env.app) == [], "a message queued a moment ago is left alone"
    env.app.config["PBX365_MAIL_RECOVER_SECONDS"] = 0
    with env.app.app_context():
        [recovered] = recover_messages(env.app)
        assert recover_messages(env.app) == [], "its job waits: not enqueued twice"
    env.work()
    assert_sent_once(env)
    assert recovered


def _mid_send(env: MailEnv, action: Callable, fault: dict, hanging: Callable[[], bool], size: str = "small") -> None:
    """A real worker sends the message; once ``hanging()`` says the faulted request hangs, ``action(proc)``; then
    the worker is stopped."""
    env.emulator.add_fault(times=1, **fault)
    proc = _worker(env)
    try:
        send(env, size)
        deadline = time.monotonic() + 30
        while not hanging():
            assert time.monotonic() < deadline, "the worker never reached the hanging request"
            time.sleep(0.05)
        action(proc)
    finally:
        _stop(proc)
    env.emulator.clear_faults()


def _after(condition: Callable[[], bool], then: float) -> Callable[[], bool]:
    """True ``then`` seconds after ``condition()`` first held."""
    held: list[float] = []

    def check() -> bool:
        if not held and condition():
            held.append(time.monotonic())
        return bool(held) and time.monotonic() - held[0] >= then
    return check


def _sending(env: MailEnv) -> Callable[[], bool]:
    """A moment after the worker claimed the message: its first request to Microsoft hangs by then."""
    return _after(lambda: statuses(env) == ["sending"], 1.5)


def _recover(env: MailEnv) -> list[str]:
    """The scheduler's pass once the dead worker's message counts as abandoned, and a worker for what it queued."""
    from flask_pbx365.mail.recovery import recover_messages

    env.app.config.update(PBX365_MAIL_JOB_TIMEOUT=1, PBX365_MAIL_RECOVER_SECONDS=1)
    time.sleep(2.2)
    with env.app.app_context():
        recovered = recover_messages(env.app)
    env.work()
    return recovered


SENT_THEN_HANGS = {"method": "POST", "path": r"/sendMail$", "delayMs": 6000}      # Microsoft has it already
HANGS_UNSENT = {"method": "POST", "path": r"/sendMail$", "delayMs": 6000, "status": 503}  # it never arrives


def _taken(env: MailEnv) -> Callable[[], bool]:
    """True once Microsoft has the message (it is in the outbox) while its answer hangs."""
    return lambda: len(env.outbox()) == 1


@pytest.mark.parametrize("fault", [SENT_THEN_HANGS, HANGS_UNSENT], ids=["after Microsoft took it", "before"])
def test_a_worker_sigkilled_mid_send_is_recovered_and_the_email_goes_out_once(mail_env, fault):
    env = mail_env
    env.enable()
    _mid_send(env, _kill_hard, fault, _taken(env) if fault is SENT_THEN_HANGS else _sending(env))
    assert statuses(env) == ["sending"], "the dead worker left it being sent"
    assert len(env.outbox()) == (1 if fault is SENT_THEN_HANGS else 0)

    assert len(_recover(env)) == 1
    assert_sent_once(env)


def test_a_worker_sigkilled_mid_upload_leaves_no_draft_and_the_voicemail_goes_out_once(mail_env):
    env = mail_env
    env.enable()
    _mid_send(env, _kill_hard, {"method": "PUT", "path": r"/AttachmentSessions\(", "delayMs": 6000},
              _after(lambda: len(env.emulator.drafts(env.tid)) == 1, 1.0), "large")
    assert len(env.emulator.drafts(env.tid)) == 1 and env.outbox() == []

    assert len(_recover(env)) == 1
    assert_sent_once(env)


def test_without_sent_items_a_dead_workers_email_is_reported_as_maybe_sent_not_sent_twice(mail_env):
    env = mail_env
    env.enable(save_to_sent_items=False)
    _mid_send(env, _kill_hard, SENT_THEN_HANGS, _taken(env))
    _recover(env)
    [note] = env.notifications()
    assert note["status"] == "failed" and "may have been sent" in note["error"], note
    assert len(env.outbox()) == 1


def test_redis_restarting_mid_send_loses_and_duplicates_nothing(mail_env, redis_conn):
    env = mail_env
    env.enable()

    def restart(_proc) -> None:
        redis_conn.execute_command("CLIENT", "KILL", "TYPE", "normal")
        redis_conn.flushall()

    _mid_send(env, restart, SENT_THEN_HANGS, _taken(env))
    _recover(env)
    assert_sent_once(env)


def test_the_postgresql_connection_dropping_mid_send_loses_and_duplicates_nothing(mail_env, database_url_base):
    if not database_url_base:
        pytest.skip("a PostgreSQL fault")
    env = mail_env
    env.enable()
    url = env.app.config["SQLALCHEMY_DATABASE_URI"]

    def drop(_proc) -> None:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        engine.dispose()

    _mid_send(env, drop, SENT_THEN_HANGS, _taken(env))
    from demo_app.models import db

    # This process's connections were terminated too, the one held by pytest-flask's request context among them.
    db.session().invalidate()
    db.session.remove()
    db.engine.dispose()
    _recover(env)
    assert_sent_once(env)
