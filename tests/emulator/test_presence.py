"""The emulator's Teams presence API behaves as Microsoft documents it (see the module docstring of
``flask_pbx365.emulator.graph_presence`` for what that is)."""
from __future__ import annotations

import pytest

from .conftest import user_id

WRITE = ["Presence.ReadWrite.All"]


def _teams(em, tid, uid, availability, activity=None):
    return em.admin("PUT", f"/tenants/{tid}/users/{uid}/teams-presence",
                    {"availability": availability, "activity": activity or availability})


def _view(em, tid, uid):
    return em.admin("GET", f"/tenants/{tid}/users/{uid}/teams-presence")


def test_a_user_without_sessions_is_offline_and_reads_need_a_presence_permission(graph_for, m365_emulator,
                                                                                 m365_tenant):
    alice = user_id(m365_emulator, m365_tenant, "alice")
    g = graph_for(["Presence.Read.All"])
    answer = g.get(f"/users/{alice}/presence")
    assert answer.status_code == 200
    assert (answer.json()["availability"], answer.json()["activity"]) == ("Offline", "Offline")
    denied = graph_for(["User.Read.All"]).request("POST", "/communications/getPresencesByUserId",
                                                  json={"ids": [alice]})
    assert denied.status_code == 403


def test_get_presences_by_user_id_takes_at_most_650_ids(graph_for, m365_emulator, m365_tenant):
    alice = user_id(m365_emulator, m365_tenant, "alice")
    _teams(m365_emulator, m365_tenant, alice, "Busy", "InAMeeting")
    g = graph_for(["Presence.ReadWrite.All"])
    ok = g.request("POST", "/communications/getPresencesByUserId",
                   json={"ids": [alice] + [f"00000000-0000-0000-0000-{i:012d}" for i in range(649)]})
    assert ok.status_code == 200
    value = ok.json()["value"]
    assert len(value) == 650
    assert value[0] == {"id": alice, "availability": "Busy", "activity": "InAMeeting"}
    too_many = g.request("POST", "/communications/getPresencesByUserId",
                         json={"ids": [f"00000000-0000-0000-0000-{i:012d}" for i in range(651)]})
    assert too_many.status_code == 400
    assert "650" in too_many.json()["error"]["message"]


def test_set_presence_checks_session_pair_duration_and_permission(graph_for, m365_emulator, m365_tenant):
    alice = user_id(m365_emulator, m365_tenant, "alice")
    g = graph_for(WRITE)
    path = f"/users/{alice}/presence/setPresence"
    good = {"sessionId": g.app_id, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1H"}
    assert g.request("POST", path, json={**good, "sessionId": "someone-else"}).status_code == 400
    assert g.request("POST", path, json={**good, "availability": "DoNotDisturb",
                                         "activity": "DoNotDisturb"}).status_code == 400
    assert g.request("POST", path, json={**good, "expirationDuration": "PT2M"}).status_code == 400
    assert g.request("POST", path, json={**good, "expirationDuration": "PT5H"}).status_code == 400
    assert graph_for(["Presence.Read.All"]).request("POST", path, json=good).status_code == 403
    assert g.request("POST", path, json=good).status_code == 200
    [session] = _view(m365_emulator, m365_tenant, alice)["sessions"]
    assert session["id"] == g.app_id.lower() and session["activity"] == "InACall"


def test_aggregation_sessions_ranked_and_preferred_presence_wins(graph_for, m365_emulator, m365_tenant):
    tid, em = m365_tenant, m365_emulator
    alice = user_id(em, tid, "alice")
    g = graph_for(WRITE)
    _teams(em, tid, alice, "Away")
    g.request("POST", f"/users/{alice}/presence/setPresence",
              json={"sessionId": g.app_id, "availability": "Available", "activity": "Available"})
    assert _view(em, tid, alice)["availability"] == "Available"  # Available > Away
    g.request("POST", f"/users/{alice}/presence/setPresence",
              json={"sessionId": g.app_id, "availability": "Busy", "activity": "InACall"})
    assert _view(em, tid, alice)["activity"] == "InACall"  # Busy > Available
    _teams(em, tid, alice, "DoNotDisturb")
    assert _view(em, tid, alice)["availability"] == "DoNotDisturb"  # DoNotDisturb > Busy
    assert g.request("POST", f"/users/{alice}/presence/setUserPreferredPresence",
                     json={"availability": "BeRightBack", "activity": "BeRightBack"}).status_code == 200
    view = _view(em, tid, alice)
    assert (view["availability"], view["preferred"]["availability"]) == ("BeRightBack", "BeRightBack")
    g.request("POST", f"/users/{alice}/presence/clearUserPreferredPresence", json={})
    assert _view(em, tid, alice)["availability"] == "DoNotDisturb"


def test_preferred_presence_needs_a_session_and_clear_presence_404s_without_one(graph_for, m365_emulator,
                                                                               m365_tenant):
    bob = user_id(m365_emulator, m365_tenant, "bob")
    g = graph_for(WRITE)
    g.request("POST", f"/users/{bob}/presence/setUserPreferredPresence",
              json={"availability": "DoNotDisturb", "activity": "DoNotDisturb"})
    assert _view(m365_emulator, m365_tenant, bob)["availability"] == "Offline"
    missing = g.request("POST", f"/users/{bob}/presence/clearPresence", json={"sessionId": g.app_id})
    assert missing.status_code == 404
    g.request("POST", f"/users/{bob}/presence/setPresence",
              json={"sessionId": g.app_id, "availability": "Available", "activity": "Available"})
    assert _view(m365_emulator, m365_tenant, bob)["availability"] == "DoNotDisturb"
    assert g.request("POST", f"/users/{bob}/presence/clearPresence", json={"sessionId": g.app_id}).status_code == 200
    assert _view(m365_emulator, m365_tenant, bob)["availability"] == "Offline"


def test_the_documented_request_rate_answers_429_with_retry_after(graph_for, m365_emulator, m365_tenant):
    m365_emulator.patch_tenant(m365_tenant, throttle={"presenceRequests": 3, "presenceWindowSeconds": 30})
    g = graph_for(["Presence.Read.All"])
    answers = [g.request("POST", "/communications/getPresencesByUserId", json={"ids": []}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1


@pytest.mark.parametrize("path,method", [("/communications/getPresencesByUserId", "POST"),
                                         ("/users/{alice}/presence", "GET")])
def test_21vianet_has_no_presence_api(graph_for, m365_emulator, m365_tenant, cert, path, method):
    from .conftest import assertion, session_for

    alice = user_id(m365_emulator, m365_tenant, "alice")
    g = graph_for(["Presence.Read.All"])
    m365_emulator.patch_tenant(m365_tenant, cloud="china")  # then a token for the emulator's Graph URL, as custom
    endpoint = f"{m365_emulator.base_url}/{m365_tenant}/oauth2/v2.0/token"
    token = session_for(m365_emulator).post(endpoint, data={
        "grant_type": "client_credentials", "client_id": g.app_id, "scope": f"{m365_emulator.base_url}/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(cert, g.app_id, endpoint)}, timeout=30).json()["access_token"]
    g.http.headers["Authorization"] = f"Bearer {token}"
    answer = g.request(method, path.format(alice=alice), json={"ids": []} if method == "POST" else None)
    assert answer.status_code == 400
    assert "Resource not found for the segment" in answer.json()["error"]["message"]


def test_admin_api_refuses_an_unknown_availability(m365_emulator, m365_tenant):
    import requests

    alice = user_id(m365_emulator, m365_tenant, "alice")
    answer = requests.put(f"{m365_emulator.base_url}/_emulator/tenants/{m365_tenant}/users/{alice}/teams-presence",
                          json={"availability": "Sleeping"}, verify=m365_emulator.ca_path, timeout=10)
    assert answer.status_code == 400 and "Available" in answer.json()["error"]
