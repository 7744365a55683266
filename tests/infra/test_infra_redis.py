"""The Redis fixtures give a real, working server (plain commands and RQ jobs)."""

from __future__ import annotations

import redis
import rq


def multiply(a: int, b: int) -> int:
    """An RQ job: must be a top-level function so the worker can import it."""
    return a * b


def test_set_get_roundtrip(redis_conn: redis.Redis) -> None:
    redis_conn.set("greeting", "hello", ex=60)
    assert redis_conn.get("greeting") == b"hello"
    assert 0 < redis_conn.ttl("greeting") <= 60


def test_each_test_starts_with_an_empty_db(redis_conn: redis.Redis) -> None:
    # The previous test left "greeting" behind; the fixture must have flushed it.
    assert redis_conn.dbsize() == 0
    redis_conn.set("leftover", "1")


def test_rq_job_runs_in_a_real_worker(redis_conn: redis.Redis) -> None:
    queue = rq.Queue("infra-test", connection=redis_conn)
    job = queue.enqueue(multiply, 6, 7)
    assert job.get_status() == "queued"

    worked = rq.Worker([queue], connection=redis_conn).work(burst=True)

    assert worked
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value() == 42
    assert len(queue) == 0
