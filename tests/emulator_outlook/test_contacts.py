"""Contacts and contact folders: paging, $select, $filter, folders, child folders, delta, 21Vianet, 403, 429."""
from __future__ import annotations

import concurrent.futures

import pytest

from .conftest import Graph, Tenant, make_tenant


@pytest.fixture(scope="module")
def mailbox(tenant: Tenant):
    """amy's mailbox: folder Work (child Team) and 12 contacts (5 default, 4 in Work, 3 in Team)."""
    amy = tenant.users["amy"]
    work = tenant.admin("POST", f"/users/{amy}/contactFolders", json={"displayName": "Work"}).json()
    team = tenant.admin("POST", f"/users/{amy}/contactFolders",
                        json={"displayName": "Team", "parentFolderId": work["id"]}).json()
    placement = [None] * 5 + [work["id"]] * 4 + [team["id"]] * 3
    for i, folder in enumerate(placement):
        r = tenant.admin("POST", f"/users/{amy}/contacts", json={
            "givenName": f"Person{i:02d}", "surname": "Test", "parentFolderId": folder,
            "emailAddresses": [{"name": f"P{i}", "address": f"person{i}@partner.example"}],
            "businessPhones": [f"+1 555 01{i:02d}"]})
        assert r.status_code == 201, r.text
    return {"work": work["id"], "team": team["id"], "amy": amy}


def test_default_folder_lists_only_its_contacts_with_paging_and_select(tenant: Tenant, mailbox):
    g = tenant.graph()
    first = g.get(f"/users/{mailbox['amy']}/contacts?$top=2&$select=givenName,businessPhones")
    assert first.status_code == 200
    body = first.json()
    assert body["@odata.context"].endswith("/contacts(givenName,businessPhones)")
    assert "$top=2" in body["@odata.nextLink"] and "$select=givenName,businessPhones" in body["@odata.nextLink"]
    assert set(body["value"][0]) <= {"@odata.etag", "id", "givenName", "businessPhones"}
    items, last = g.pages(body["@odata.nextLink"])
    names = sorted(c["givenName"] for c in body["value"] + items)
    assert names == [f"Person{i:02d}" for i in range(5)]
    assert "@odata.nextLink" not in last


def test_contacts_by_upn_and_single_contact(tenant: Tenant, mailbox):
    g = tenant.graph()
    upn = g.get(f"/users/{mailbox['amy']}").json()["userPrincipalName"]
    items, _ = g.pages(f"/users/{upn}/contacts")
    one = g.get(f"/users/{upn}/contacts/{items[0]['id']}").json()
    assert one["id"] == items[0]["id"] and one["surname"] == "Test"
    assert one["parentFolderId"] == items[0]["parentFolderId"]
    assert g.get(f"/users/{upn}/contacts/nope").status_code == 404


def test_email_filter(tenant: Tenant, mailbox):
    g = tenant.graph()
    r = g.get(f"/users/{mailbox['amy']}/contacts?$filter=emailAddresses/any(a:a/address eq 'PERSON3@partner.example')")
    assert [c["givenName"] for c in r.json()["value"]] == ["Person03"]
    bad = g.get(f"/users/{mailbox['amy']}/contacts?$filter=startswith(givenName,'P')")
    assert bad.status_code == 400


def test_folders_child_folders_and_their_contacts(tenant: Tenant, mailbox):
    g = tenant.graph()
    amy = mailbox["amy"]
    folders = g.get(f"/users/{amy}/contactFolders").json()["value"]
    assert [f["displayName"] for f in folders] == ["Work"]
    default_id = folders[0]["parentFolderId"]
    assert default_id not in {f["id"] for f in folders}
    default_contacts = g.get(f"/users/{amy}/contacts").json()["value"]
    assert {c["parentFolderId"] for c in default_contacts} == {default_id}
    assert g.get(f"/users/{amy}/contactFolders/{mailbox['work']}").json()["displayName"] == "Work"
    children = g.get(f"/users/{amy}/contactFolders/{mailbox['work']}/childFolders").json()["value"]
    assert [(f["displayName"], f["parentFolderId"]) for f in children] == [("Team", mailbox["work"])]
    work, _ = g.pages(f"/users/{amy}/contactFolders/{mailbox['work']}/contacts")
    team, _ = g.pages(f"/users/{amy}/contactFolders/{mailbox['work']}/childFolders/{mailbox['team']}/contacts")
    assert sorted(c["givenName"] for c in work) == [f"Person{i:02d}" for i in range(5, 9)]
    assert sorted(c["givenName"] for c in team) == [f"Person{i:02d}" for i in range(9, 12)]


def test_shared_mailbox_contacts(tenant: Tenant):
    g = tenant.graph()
    rec = tenant.users["reception"]
    tenant.admin("POST", f"/users/{rec}/contacts", json={"displayName": "Plumber", "mobilePhone": "+1 555 0199"})
    assert g.get(f"/users/{rec}/mailboxSettings/userPurpose").json()["value"] == "shared"
    assert [c["displayName"] for c in g.get(f"/users/{rec}/contacts").json()["value"]] == ["Plumber"]


def _delta_round(g: Graph, url: str, page: int = 2) -> tuple[list[dict], str]:
    items, pages = [], 0
    while True:
        r = g.get(url, headers={"Prefer": f"odata.maxpagesize={page}"})
        assert r.status_code == 200, r.text
        items += r.json()["value"]
        pages += 1
        if "@odata.deltaLink" in r.json():
            return items, r.json()["@odata.deltaLink"]
        url = r.json()["@odata.nextLink"]
        assert "/contactfolders/" in url and "$skiptoken=" in url


def test_contact_delta_add_update_delete(tenant: Tenant, mailbox):
    g = tenant.graph()
    amy, work = mailbox["amy"], mailbox["work"]
    items, delta = _delta_round(g, f"/users/{amy}/contactFolders/{work}/contacts/delta?$select=givenName")
    assert sorted(i["givenName"] for i in items) == [f"Person{i:02d}" for i in range(5, 9)]
    assert all(set(i) <= {"@odata.etag", "id", "givenName"} for i in items)
    assert "/contactfolders/" in delta and "$deltatoken=" in delta
    assert g.get(delta).json()["value"] == []

    victim, renamed = sorted(items, key=lambda i: i["givenName"])[:2]
    tenant.admin("PATCH", f"/users/{amy}/contacts/{renamed['id']}", json={"givenName": "Renamed"})
    tenant.admin("DELETE", f"/users/{amy}/contacts/{victim['id']}")
    added = tenant.admin("POST", f"/users/{amy}/contacts", json={"givenName": "Newbie", "parentFolderId": work}).json()
    tenant.admin("POST", f"/users/{amy}/contacts", json={"givenName": "Elsewhere"})   # default folder: not here

    changes, delta2 = _delta_round(g, delta)
    by_id = {c["id"]: c for c in changes}
    assert by_id[renamed["id"]]["givenName"] == "Renamed"
    assert by_id[victim["id"]]["@removed"] == {"reason": "deleted"}
    assert by_id[added["id"]]["givenName"] == "Newbie"
    assert len(changes) == 3
    assert g.get(delta2).json()["value"] == []


def test_contact_folder_delta(tenant: Tenant, mailbox):
    g = tenant.graph()
    amy = mailbox["amy"]
    items, delta = _delta_round(g, f"/users/{amy}/contactFolders/delta")
    assert {i["displayName"] for i in items} == {"Work", "Team"}
    made = tenant.admin("POST", f"/users/{amy}/contactFolders", json={"displayName": "Temp"}).json()
    changes, delta = _delta_round(g, delta)
    assert [c["displayName"] for c in changes] == ["Temp"]
    tenant.admin("DELETE", f"/users/{amy}/contactFolders/{made['id']}")
    changes, _ = _delta_round(g, delta)
    assert changes == [{"@odata.type": "#microsoft.graph.contactFolder", "id": made["id"],
                        "@removed": {"reason": "deleted"}}]


def test_reset_delta_token_is_sync_state_not_found(tenant: Tenant, mailbox):
    g = tenant.graph()
    _, delta = _delta_round(g, f"/users/{mailbox['amy']}/contactFolders/{mailbox['work']}/contacts/delta")
    assert tenant.admin("POST", "/delta/reset").status_code in (200, 204)
    r = g.get(delta)
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "SyncStateNotFound"


def test_contact_delta_unavailable_in_21vianet(m365_emulator, keys):
    china = make_tenant(m365_emulator, keys, cloud="china")
    g = china.graph()
    amy = china.users["amy"]
    folder = china.admin("POST", f"/users/{amy}/contactFolders", json={"displayName": "Work"}).json()["id"]
    r = g.get(f"/users/{amy}/contactFolders/{folder}/contacts/delta")
    assert r.status_code == 501 and r.json()["error"]["code"] == "NotImplemented"
    assert g.get(f"/users/{amy}/contactFolders/delta").status_code == 501
    assert g.get(f"/users/{amy}/contactFolders/{folder}/contacts").status_code == 200   # the full-read fallback


def test_contacts_need_contacts_read(tenant: Tenant, mailbox):
    g = tenant.graph(["User.Read.All"])
    r = g.get(f"/users/{mailbox['amy']}/contacts")
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"


def test_mailbox_concurrency_limit_is_429(tenant: Tenant, mailbox):
    g = tenant.graph()
    assert tenant.admin("PUT", "/mailboxLatency", json={"ms": 700}).status_code == 200
    try:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: g.get(f"/users/{mailbox['amy']}/contacts"), range(6)))
    finally:
        tenant.admin("PUT", "/mailboxLatency", json={"ms": 0})
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) >= 4 and 429 in statuses
    throttled = next(r for r in answers if r.status_code == 429)
    assert float(throttled.headers["Retry-After"]) > 0
    # another mailbox is not affected
    assert g.get(f"/users/{tenant.users['reception']}/contacts").status_code == 200
