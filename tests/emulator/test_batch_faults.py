"""$batch, fault injection, the request log, throttling, and the admin API's loopback rule."""
from __future__ import annotations

import time

import pytest
import requests

from flask_pbx365.emulator.app import create_app

from .conftest import user_id


@pytest.fixture(autouse=True)
def _no_leftover_faults(m365_emulator):
    m365_emulator.clear_faults()
    yield
    m365_emulator.clear_faults()


def test_batch_depends_on_and_errors(graph, m365_emulator, m365_tenant):
    alice = user_id(m365_emulator, m365_tenant, "alice")
    r = graph.request("POST", "/$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": f"/users/{alice}?$select=displayName"},
        {"id": "2", "method": "GET", "url": "users/nobody@nowhere.example"},
        {"id": "3", "method": "GET", "url": "/users", "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": "groups", "dependsOn": ["1"]},
    ]})
    assert r.status_code == 200
    by_id = {x["id"]: x for x in r.json()["responses"]}
    assert by_id["1"]["status"] == 200 and by_id["1"]["body"]["displayName"] == "Alice Anders"
    assert by_id["2"]["status"] == 404 and by_id["2"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert by_id["3"]["status"] == 424
    assert by_id["4"]["status"] == 200 and len(by_id["4"]["body"]["value"]) == 2
    dup = graph.request("POST", "/$batch", json={"requests": [{"id": "a", "method": "GET", "url": "/users"},
                                                              {"id": "A", "method": "GET", "url": "/users"}]})
    assert dup.status_code == 400
    many = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]
    assert graph.request("POST", "/$batch", json={"requests": many}).status_code == 400


def test_batch_items_are_throttled_and_logged(graph, m365_emulator, m365_tenant):
    m365_emulator.patch_tenant(m365_tenant, throttle={"capacity": 5, "windowSeconds": 100})
    m365_emulator.clear_requests()
    r = graph.request("POST", "/$batch", json={"requests": [
        {"id": str(i), "method": "GET", "url": "/users"} for i in range(4)]})
    statuses = [x["status"] for x in sorted(r.json()["responses"], key=lambda x: x["id"])]
    assert r.status_code == 200 and statuses == [200, 200, 429, 429]
    throttled = next(x for x in r.json()["responses"] if x["status"] == 429)
    assert int(throttled["headers"]["Retry-After"]) >= 1
    assert throttled["body"]["error"]["code"] == "TooManyRequests"
    log = m365_emulator.requests_log()
    assert [(e["path"], e["status"]) for e in log] == [("/v1.0/users", s) for s in statuses] + [("/v1.0/$batch", 200)]
    assert all(e["tenantId"] == m365_tenant and e["appId"] == graph.app_id for e in log)
    direct = graph.get("/users")
    assert direct.status_code == 429 and direct.headers["Retry-After"]
    assert direct.json()["error"]["innerError"]["status"] == "429"
    m365_emulator.patch_tenant(m365_tenant, throttle={"capacity": 8000, "windowSeconds": 10})
    assert graph.get("/users").status_code == 200


def test_faults_skip_times_status_and_log(graph, m365_emulator):
    m365_emulator.clear_requests()
    m365_emulator.add_fault(path=r"^/v1\.0/users\?\$top=3", skip=1, times=2, status=503, retryAfter=2)
    m365_emulator.add_fault(path=r"^/v1\.0/users", method="GET", times=1, status=500)  # younger: only leftovers
    statuses = [graph.get("/users?$top=3").status_code for _ in range(4)]
    assert statuses == [200, 503, 503, 500]
    r = graph.get("/users?$top=3")
    assert r.status_code == 200
    log = m365_emulator.requests_log()
    assert [e["status"] for e in log] == [200, 503, 503, 500, 200]
    assert log[0]["query"] == "$top=3" and log[0]["at"].endswith("Z")
    m365_emulator.add_fault(path="/v1.0/users", times=1, status=429, retryAfter=3)
    r = graph.get("/users")
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert r.json()["error"]["code"] == "TooManyRequests"


def test_fault_reset_before_and_delay(graph, m365_emulator):
    m365_emulator.clear_requests()
    m365_emulator.add_fault(path="^/v1.0/users$", times=1, reset="before")
    with pytest.raises(requests.ConnectionError):
        graph.get("/users")
    assert [e["status"] for e in m365_emulator.requests_log()] == [0]
    m365_emulator.add_fault(path="^/v1.0/groups", times=1, delayMs=400)
    start = time.monotonic()
    assert graph.get("/groups").status_code == 200
    assert time.monotonic() - start >= 0.4
    assert graph.get("/users").status_code == 200


def test_fault_reset_after_does_the_request(graph_for, m365_emulator, m365_tenant):
    alice = user_id(m365_emulator, m365_tenant, "alice")
    g = graph_for(["User.ReadWrite.All"])
    m365_emulator.add_fault(path=f"/users/{alice}$", method="PATCH", times=1, reset="after")
    with pytest.raises(requests.ConnectionError):
        g.request("PATCH", f"/users/{alice}", json={"jobTitle": "Lost answer"})
    assert g.get(f"/users/{alice}").json()["jobTitle"] == "Lost answer"


def test_batch_sub_request_fault(graph, m365_emulator):
    m365_emulator.add_fault(path="^/v1.0/groups", times=1, status=503)
    r = graph.request("POST", "/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/groups"},
                                                            {"id": "2", "method": "GET", "url": "/groups"}]})
    assert sorted(x["status"] for x in r.json()["responses"]) == [200, 503]


def test_admin_api_is_loopback_only(tmp_path):
    client = create_app(tmp_path).test_client()
    assert client.get("/_emulator/tenants", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403
    assert client.get("/_emulator/ui", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403
    assert client.get("/_emulator/tenants").status_code == 200


def test_permission_403_and_401(graph_for, m365_emulator):
    g = graph_for(["MailboxSettings.Read"])
    r = g.get("/groups")
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"
    assert set(r.json()["error"]["innerError"]) >= {"date", "request-id", "client-request-id"}
    anon = requests.get(f"{m365_emulator.base_url}/v1.0/users", verify=m365_emulator.ca_path)
    assert anon.status_code == 401 and anon.json()["error"]["code"] == "InvalidAuthenticationToken"
