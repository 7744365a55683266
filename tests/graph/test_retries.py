"""Throttling, transient failures and timeouts, with waits measured on the real clock."""
from __future__ import annotations

import email.utils
import threading
import time

import pytest

from flask_pbx365.exceptions import ConnectionFailedError, ThrottledError

USERS = r"^/v1\.0/users$"


def _timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def test_retry_after_seconds_is_honoured(graph_env):
    with graph_env.client() as client:
        client.get("/users")  # token first, so only the retry wait is measured
        graph_env.emulator.add_fault(method="GET", path=USERS, status=429, retryAfter="1.2", times=1)
        page, elapsed = _timed(lambda: client.get("/users"))
    assert len(page["value"]) == len(graph_env.user_ids)
    assert 1.2 <= elapsed < 3.0
    assert [e["status"] for e in graph_env.requests("/v1.0/users", "GET")][-2:] == [429, 200]


def test_retry_after_http_date_is_honoured(graph_env):
    with graph_env.client() as client:
        client.get("/users")
        retry_at = time.time() + 3
        graph_env.emulator.add_fault(method="GET", path=USERS, status=503, times=1,
                                     retryAfter=email.utils.formatdate(retry_at, usegmt=True))
        _, elapsed = _timed(lambda: client.get("/users"))
    assert 1.0 <= elapsed < 6.0  # the date has whole-second resolution; backoff alone would be ~0.01 s
    assert time.time() >= int(retry_at) - 0.05


def test_503_storm_recovers(graph_env):
    graph_env.emulator.add_fault(method="GET", path=USERS, status=503, times=3)
    with graph_env.client(max_retries=6) as client:
        page = client.get("/users")
    assert len(page["value"]) == len(graph_env.user_ids)
    assert [e["status"] for e in graph_env.requests("/v1.0/users", "GET")] == [503, 503, 503, 200]


def test_endless_503_gives_up_after_max_retries(graph_env):
    graph_env.emulator.add_fault(method="GET", path=USERS, status=503, times=100)
    with graph_env.client(max_retries=4, max_backoff=0.05) as client:
        client.tokens.get()
        start = time.monotonic()
        with pytest.raises(ThrottledError) as info:
            client.get("/users")
        elapsed = time.monotonic() - start
    assert elapsed < 3.0
    assert info.value.status == 503 and "after 4 retries" in str(info.value)
    assert len(graph_env.requests("/v1.0/users", "GET")) == 5


def test_post_is_not_retried_on_504_but_is_on_429(graph_env):
    user = graph_env.user_ids[0]
    path = rf"^/v1\.0/users/{user}/sendMail$"
    mail = {"message": {"subject": "hi", "body": {"contentType": "Text", "content": "x"},
                        "toRecipients": [{"emailAddress": {"address": "ada@example.com"}}]}}
    with graph_env.client() as client:
        graph_env.emulator.add_fault(method="POST", path=path, status=504, times=1)
        with pytest.raises(Exception) as info:
            client.post(f"/users/{user}/sendMail", mail)
        assert getattr(info.value, "status", None) == 504
        assert len(graph_env.requests("/sendMail", "POST")) == 1

        graph_env.emulator.clear_requests()
        graph_env.emulator.add_fault(method="POST", path=path, status=429, retryAfter="0.1", times=1)
        assert client.post(f"/users/{user}/sendMail", mail) is None  # 202, no body
        assert [e["status"] for e in graph_env.requests("/sendMail", "POST")] == [429, 202]


def test_timeout_is_retried_for_get(graph_env):
    with graph_env.client(timeout=0.5) as client:
        client.get("/users")
        graph_env.emulator.clear_requests()
        graph_env.emulator.add_fault(method="GET", path=USERS, delayMs=4000, times=1)
        page, elapsed = _timed(lambda: client.get("/users"))
    assert len(page["value"]) == len(graph_env.user_ids)
    assert 0.5 <= elapsed < 3.5  # gave up on the slow answer after the read timeout, long before its 4 s
    deadline = time.monotonic() + 30  # the emulator logs the slow request once its delayed answer is done
    while len(graph_env.requests("/v1.0/users", "GET")) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(graph_env.requests("/v1.0/users", "GET")) == 2


def test_lost_response_is_retried_for_get_but_not_for_post(graph_env):
    user = graph_env.user_ids[0]
    with graph_env.client() as client:
        graph_env.emulator.add_fault(method="GET", path=USERS, reset="after", times=1)
        assert len(client.get("/users")["value"]) == len(graph_env.user_ids)
        assert [e["status"] for e in graph_env.requests("/v1.0/users", "GET")] == [0, 200]

        graph_env.emulator.add_fault(method="POST", path=rf"/users/{user}/sendMail$", reset="after", times=1)
        with pytest.raises(ConnectionFailedError):
            client.post(f"/users/{user}/sendMail", {"message": {
                "subject": "once", "body": {"contentType": "Text", "content": "x"},
                "toRecipients": [{"emailAddress": {"address": "ada@example.com"}}]}})
        assert len(graph_env.requests("/sendMail", "POST")) == 1  # never sent twice


def test_mailbox_concurrency_limit(graph_env):
    user = graph_env.user_ids[0]
    graph_env.emulator.add_fault(method="GET", path=rf"^/v1\.0/users/{user}/mailboxSettings", delayMs=400,
                                 times=6)
    with graph_env.client(mailbox_concurrency=2) as client:
        client.get("/users")
        errors: list[BaseException] = []

        def call():
            try:
                client.get(f"/users/{user}/mailboxSettings", mailbox=user)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(6)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
    assert not errors
    assert elapsed >= 1.1  # 6 calls, 2 at a time, 0.4 s each: three waves
