"""Subscriptions with a real local webhook: validation handshake, notifications, renew, delete, lifecycle, expiry."""
from __future__ import annotations

import datetime as dt
import time

import pytest

from .conftest import Listener, Tenant


def _in(minutes: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _subscribe(tenant: Tenant, listener: Listener, resource: str, **extra) -> dict:
    r = tenant.graph()("POST", "/subscriptions", json={
        "changeType": "created,updated,deleted", "notificationUrl": listener.url, "resource": resource,
        "expirationDateTime": _in(60), "clientState": "pbx-secret", **extra})
    assert r.status_code == 201, r.text
    return r.json()


def test_validation_handshake(tenant: Tenant, listener: Listener):
    sub = _subscribe(tenant, listener, f"users/{tenant.users['amy']}/contacts", lifecycleNotificationUrl=listener.url)
    assert len(listener.validations) == 2          # notificationUrl and lifecycleNotificationUrl
    assert all(" " in t for t in listener.validations)   # delivered URL-decoded
    assert sub["@odata.context"].endswith("$metadata#subscriptions/$entity")
    assert sub["clientState"] == "pbx-secret" and sub["applicationId"]
    for mode in ("wrong", "html"):
        listener.mode = mode
        r = tenant.graph()("POST", "/subscriptions", json={
            "changeType": "updated", "notificationUrl": listener.url, "resource": "users",
            "expirationDateTime": _in(60)})
        assert r.status_code == 400, mode
    listener.mode = "ok"
    unreachable = tenant.graph()("POST", "/subscriptions", json={
        "changeType": "updated", "notificationUrl": "http://127.0.0.1:9/nothing", "resource": "users",
        "expirationDateTime": _in(60)})
    assert unreachable.status_code == 400


def test_contact_change_notifies_within_seconds(tenant: Tenant, listener: Listener):
    amy = tenant.users["amy"]
    sub = _subscribe(tenant, listener, f"users/{amy}/contacts")
    added = tenant.admin("POST", f"/users/{amy}/contacts", json={"givenName": "Webhook"}).json()
    started = time.monotonic()
    note = listener.wait_for(lambda n: n["resourceData"]["id"] == added["id"], timeout=5)
    assert time.monotonic() - started < 5
    assert note["subscriptionId"] == sub["id"] and note["changeType"] == "created"
    assert note["clientState"] == "pbx-secret" and note["tenantId"] == tenant.id
    assert note["resource"] == f"Users/{amy}/Contacts/{added['id']}"
    assert note["resourceData"]["@odata.type"] == "#Microsoft.Graph.Contact"
    tenant.admin("DELETE", f"/users/{amy}/contacts/{added['id']}")
    gone = listener.wait_for(lambda n: n["changeType"] == "deleted" and n["resourceData"]["id"] == added["id"])
    assert gone["subscriptionId"] == sub["id"]


def test_folder_subscription_ignores_other_folders(tenant: Tenant, listener: Listener):
    amy = tenant.users["amy"]
    folder = tenant.admin("POST", f"/users/{amy}/contactFolders", json={"displayName": "Hooks"}).json()["id"]
    _subscribe(tenant, listener, f"users/{amy}/contactFolders/{folder}/contacts", changeType="created")
    outside = tenant.admin("POST", f"/users/{amy}/contacts", json={"givenName": "Outside"}).json()
    inside = tenant.admin("POST", f"/users/{amy}/contacts", json={"givenName": "In", "parentFolderId": folder}).json()
    listener.wait_for(lambda n: n["resourceData"]["id"] == inside["id"])
    time.sleep(0.3)
    assert not any(n["resourceData"]["id"] == outside["id"] for b in listener.received for n in b["value"])


def test_event_and_user_subscriptions(tenant: Tenant, listener: Listener):
    amy = tenant.users["amy"]
    _subscribe(tenant, listener, f"users/{amy}/events")
    _subscribe(tenant, listener, "users", changeType="updated,deleted")
    event = tenant.admin("POST", f"/users/{amy}/events", json={
        "subject": "Hook", "start": {"dateTime": "2026-05-01T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-05-01T11:00:00", "timeZone": "UTC"}}).json()
    note = listener.wait_for(lambda n: n["resourceData"]["id"] == event["id"])
    assert note["resource"] == f"Users/{amy}/Events/{event['id']}"
    tenant.admin("PATCH", f"/users/{amy}", json={"jobTitle": "Boss"})
    user_note = listener.wait_for(lambda n: n["resourceData"]["id"] == amy)
    assert user_note["changeType"] == "updated" and user_note["resource"] == f"Users/{amy}"


def test_renew_get_delete(tenant: Tenant, listener: Listener):
    g = tenant.graph()
    sub = _subscribe(tenant, listener, f"users/{tenant.users['amy']}/events")
    too_long = g("PATCH", f"/subscriptions/{sub['id']}", json={"expirationDateTime": _in(4230 + 60)})
    assert too_long.status_code == 400
    renewed = g("PATCH", f"/subscriptions/{sub['id']}", json={"expirationDateTime": _in(4000)})
    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"] > sub["expirationDateTime"]
    assert g.get(f"/subscriptions/{sub['id']}").json()["expirationDateTime"] == renewed.json()["expirationDateTime"]
    assert sub["id"] in {s["id"] for s in g.get("/subscriptions").json()["value"]}
    assert sub["id"] in {s["id"] for s in tenant.admin("GET", "/subscriptions").json()}
    assert g("POST", f"/subscriptions/{sub['id']}/reauthorize").status_code == 204
    assert g("DELETE", f"/subscriptions/{sub['id']}").status_code == 204
    assert g.get(f"/subscriptions/{sub['id']}").status_code == 404
    assert sub["id"] not in {s["id"] for s in tenant.admin("GET", "/subscriptions").json()}


def test_expiry_and_lifecycle_events(tenant: Tenant, listener: Listener):
    amy = tenant.users["amy"]
    sub = _subscribe(tenant, listener, f"users/{amy}/contacts", lifecycleNotificationUrl=listener.url)
    assert tenant.admin("POST", f"/subscriptions/{sub['id']}/lifecycle",
                        json={"event": "reauthorizationRequired"}).status_code == 202
    reauth = listener.wait_for(lambda n: n.get("lifecycleEvent") == "reauthorizationRequired")
    assert reauth["subscriptionId"] == sub["id"] and reauth["clientState"] == "pbx-secret"
    assert tenant.admin("POST", f"/subscriptions/{sub['id']}/expire").status_code == 202
    removed = listener.wait_for(lambda n: n.get("lifecycleEvent") == "subscriptionRemoved", timeout=5)
    assert removed["subscriptionId"] == sub["id"] and removed["tenantId"] == tenant.id
    assert tenant.graph().get(f"/subscriptions/{sub['id']}").status_code == 404
    # a short-lived subscription expires by itself
    short = _subscribe(tenant, listener, f"users/{amy}/contacts", expirationDateTime=_in(1 / 30))
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and tenant.graph().get(f"/subscriptions/{short['id']}").status_code == 200:
        time.sleep(0.2)
    assert tenant.graph().get(f"/subscriptions/{short['id']}").status_code == 404


def test_subscriptions_need_the_resource_permission(tenant: Tenant, listener: Listener):
    g = tenant.graph(["Calendars.Read"])
    r = g("POST", "/subscriptions", json={"changeType": "created", "notificationUrl": listener.url,
                                          "resource": f"users/{tenant.users['amy']}/contacts",
                                          "expirationDateTime": _in(60)})
    assert r.status_code == 403
    assert listener.validations == []
    bad_type = tenant.graph()("POST", "/subscriptions", json={
        "changeType": "created", "notificationUrl": listener.url, "resource": "users", "expirationDateTime": _in(60)})
    assert bad_type.status_code == 400


@pytest.fixture(autouse=True)
def _drop_subscriptions(tenant: Tenant):
    """Each test starts and ends without subscriptions (later changes must not hit closed listeners)."""
    def drop():
        g = tenant.graph()
        for s in g.get("/subscriptions").json()["value"]:
            g("DELETE", f"/subscriptions/{s['id']}")
    drop()
    yield
    drop()
