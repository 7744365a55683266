"""JSON $batch: chunking by 20, per-item retry, dependsOn, errors reported per item."""
from __future__ import annotations

import time
import uuid

from flask_pbx365.exceptions import NotFoundError
from flask_pbx365.graph import BatchRequest


def _batch_posts(env) -> list[dict]:
    return env.requests("/v1.0/$batch", "POST")


def test_partial_failure_retries_only_the_throttled_item(graph_env):
    a, b, c = graph_env.user_ids
    missing = str(uuid.uuid4())
    graph_env.emulator.add_fault(method="GET", path=rf"^/v1\.0/users/{b}$", status=429, retryAfter="0.5", times=1)
    requests = [
        BatchRequest("1", "GET", f"/users/{a}"),
        BatchRequest("2", "GET", f"/users/{b}"),
        BatchRequest("3", "GET", f"/users/{missing}"),
        BatchRequest("4", "GET", f"/users/{c}/mailboxSettings", depends_on=["2"]),
    ]
    with graph_env.client() as client:
        client.get("/users")
        graph_env.emulator.clear_requests()
        start = time.monotonic()
        answers = client.batch(requests)
        elapsed = time.monotonic() - start
    assert [r.id for r in answers] == ["1", "2", "3", "4"]
    assert [r.status for r in answers] == [200, 200, 404, 200]
    assert answers[1].body["id"] == b
    assert isinstance(answers[2].error(), NotFoundError)
    assert answers[0].error() is None
    assert elapsed >= 0.5  # the item's Retry-After was honoured
    assert len(_batch_posts(graph_env)) == 2
    # the first user was fetched once: only the throttled item (and its dependant) went again
    assert len(graph_env.requests(f"/v1.0/users/{a}", "GET")) == 1
    assert [e["status"] for e in graph_env.requests(f"/v1.0/users/{b}", "GET")] == [429, 200]
    assert len(graph_env.requests(f"/users/{c}/mailboxSettings", "GET")) == 1


def test_more_than_20_requests_are_chunked(graph_env):
    ids = graph_env.user_ids
    requests = [BatchRequest(f"r{i}", "GET", f"/users/{ids[i % len(ids)]}?$select=id") for i in range(45)]
    with graph_env.client() as client:
        client.get("/users")
        graph_env.emulator.clear_requests()
        answers = client.batch(requests)
    assert all(a.ok for a in answers) and len(answers) == 45
    assert [a.body["id"] for a in answers] == [ids[i % len(ids)] for i in range(45)]
    assert len(_batch_posts(graph_env)) == 3


def test_item_throttled_past_max_retries_is_reported(graph_env):
    a = graph_env.user_ids[0]
    graph_env.emulator.add_fault(method="GET", path=rf"^/v1\.0/users/{a}$", status=429, retryAfter="0", times=50)
    with graph_env.client(max_retries=2) as client:
        answers = client.batch([BatchRequest("x", "GET", f"/users/{a}"),
                                BatchRequest("y", "GET", f"/users/{graph_env.user_ids[1]}")])
    assert [a.status for a in answers] == [429, 200]
    assert len(_batch_posts(graph_env)) == 3


def test_binary_items_come_back_as_bytes(graph_env):
    a, b = graph_env.user_ids[:2]
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    graph_env.emulator.put_photo(graph_env.tenant_id, a, image, "image/png")
    with graph_env.client() as client:
        photo, missing = client.batch([BatchRequest("p", "GET", f"/users/{a}/photo/$value"),
                                       BatchRequest("q", "GET", f"/users/{b}/photo/$value")])
        direct, headers = client.get_bytes(f"/users/{a}/photo/$value")
    assert photo.ok and photo.body == image == direct
    assert headers["content-type"].startswith("image/png")
    assert missing.status == 404 and isinstance(missing.error(), NotFoundError)
