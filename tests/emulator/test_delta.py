"""users/delta: rounds, tracked properties, removals, restore, $deltatoken=latest, reset (410)."""
from __future__ import annotations

from .conftest import user_id

MAX2 = {"Prefer": "odata.maxpagesize=2"}


def _round(g, url, headers=None):
    """Follow nextLinks to the deltaLink; returns (objects, deltaLink, pages)."""
    objs, pages = [], 0
    while True:
        body = g.get(url, headers=headers).json()
        pages += 1
        objs += body["value"]
        if "@odata.deltaLink" in body:
            return objs, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]
        assert "$skiptoken=" in url


def test_delta_round_and_changes(graph, m365_emulator, m365_tenant):
    em, tid = m365_emulator, m365_tenant
    first = graph.get("/users/delta?$select=displayName,jobTitle", headers=MAX2).json()
    assert first["@odata.context"].endswith("$metadata#users(displayName,jobTitle)")
    objs, delta, pages = _round(graph, "/users/delta?$select=displayName,jobTitle", MAX2)
    assert pages == 3 and len(objs) == 6 and all("id" in o for o in objs)
    assert "$deltatoken=" in delta and delta.startswith(em.base_url + "/v1.0/users/delta?")
    assert _round(graph, delta)[0] == []

    alice, bob, carol, dave = (user_id(em, tid, n) for n in ("alice", "bob", "carol", "dave"))
    new = em.add_user(tid, userPrincipalName=f"erin@{tid[:8]}.contoso.example", displayName="Erin E")
    em.patch_user(tid, alice, jobTitle="VP")            # tracked
    em.patch_user(tid, bob, department="Support")       # not selected: not tracked
    em.delete_user(tid, carol)                          # soft
    em.delete_user(tid, dave, permanent=True)           # hard
    objs, delta2, _ = _round(graph, delta)
    by_id = {o["id"]: o for o in objs}
    assert set(by_id) == {new["id"], alice, carol, dave}
    assert by_id[new["id"]]["displayName"] == "Erin E"
    assert by_id[alice]["jobTitle"] == "VP" and by_id[alice]["displayName"] == "Alice Anders"
    assert by_id[carol] == {"id": carol, "@removed": {"reason": "changed"}}
    assert by_id[dave] == {"id": dave, "@removed": {"reason": "deleted"}}

    em.restore_user(tid, carol)
    em.patch_user(tid, alice, jobTitle=None)
    objs, delta3, _ = _round(graph, delta2, {"Prefer": "return=minimal"})
    by_id = {o["id"]: o for o in objs}
    assert "@removed" not in by_id[carol] and by_id[carol]["displayName"] == "Carol Clark"
    assert by_id[alice] == {"id": alice, "jobTitle": None}


def test_delta_latest_filter_and_reset(graph, m365_emulator, m365_tenant):
    em, tid = m365_emulator, m365_tenant
    body = graph.get("/users/delta?$deltatoken=latest").json()
    assert body["value"] == [] and "@odata.nextLink" not in body
    alice, bob = user_id(em, tid, "alice"), user_id(em, tid, "bob")
    em.patch_user(tid, bob, displayName="Robert Brown")
    objs, _, _ = _round(graph, body["@odata.deltaLink"])
    assert [o["id"] for o in objs] == [bob] and objs[0]["displayName"] == "Robert Brown"

    objs, delta, _ = _round(graph, f"/users/delta?$filter=id eq '{alice}'")
    assert [o["id"] for o in objs] == [alice]
    em.patch_user(tid, bob, displayName="Bobby")
    assert _round(graph, delta)[0] == []
    assert graph.get("/users/delta?$filter=department eq 'Sales'").status_code == 400

    _, delta, _ = _round(graph, "/users/delta")
    mid = graph.get("/users/delta", headers=MAX2).json()["@odata.nextLink"]
    em.reset_delta(tid)
    for link in (delta, mid):
        r = graph.get(link)
        assert r.status_code == 410, r.text
        assert r.headers["Location"].startswith(em.base_url + "/v1.0/users/delta")
    forged = delta[:-6] + "AAAAAA"
    assert graph.get(forged).status_code == 400
