"""Graph directory: users list/paging/filter/select/count, PATCH, photos, groups, mailbox settings."""
from __future__ import annotations

from .conftest import user_id

EVENTUAL = {"ConsistencyLevel": "eventual"}


def test_users_paging_beyond_999(m365_emulator, graph_for):
    tid = m365_emulator.generate(users=2100, seed=7)["id"]
    g = graph_for(["User.Read.All"], tid=tid)
    ids, url, pages = [], "/users?$top=999&$select=id,displayName", 0
    while url:
        r = g.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        ids += [u["id"] for u in body["value"]]
        url = body.get("@odata.nextLink")
        if url:
            assert url.startswith(m365_emulator.base_url + "/v1.0/users?")
            assert "$top=999" in url and "$skiptoken=" in url
    assert pages == 3 and len(ids) == len(set(ids)) == 2100
    assert g.get("/users?$top=1000").status_code == 400
    default = g.get("/users").json()
    assert len(default["value"]) == 100 and "@odata.nextLink" in default


def test_generate_is_deterministic(m365_emulator):
    a = m365_emulator.generate(users=30, seed=3, tenantId="aaaaaaaa-0000-4000-8000-000000000001")
    b = m365_emulator.generate(users=30, seed=3, tenantId="aaaaaaaa-0000-4000-8000-000000000002")
    ua = sorted((u["id"], u["displayName"]) for u in m365_emulator.users(a["id"]))
    ub = sorted((u["id"], u["displayName"]) for u in m365_emulator.users(b["id"]))
    assert ua == ub and len(ua) == 30


def test_filter_select_count(graph, m365_emulator):
    names = lambda r: sorted(u["displayName"] for u in r.json()["value"])  # noqa: E731
    assert names(graph.get("/users?$filter=department eq 'sales'")) == ["Alice Anders", "Bob Brown"]
    assert names(graph.get("/users?$filter=startswith(displayName,'ca') or accountEnabled eq false")) == \
        ["Carol Clark", "Dave Davis"]
    assert names(graph.get("/users?$filter=userType in ('Guest')")) == ["Gina Guest"]
    assert names(graph.get("/users?$filter=department eq 'Sales' and jobTitle eq 'Account Manager'")) == \
        ["Alice Anders"]
    r = graph.get("/users?$filter=department ne 'Sales'")
    assert r.status_code == 400 and r.json()["error"]["code"] == "Request_UnsupportedQuery"
    r = graph.get("/users?$filter=department ne 'Sales'&$count=true", headers=EVENTUAL)
    assert r.json()["@odata.count"] == 4
    assert graph.get("/users?$filter=streetAddress eq 'x'").json()["error"]["code"] == "Request_UnsupportedQuery"
    r = graph.get("/users?$select=displayName,department")
    assert r.json()["@odata.context"].endswith("/v1.0/$metadata#users(displayName,department)")
    assert all(set(u) == {"displayName", "department"} for u in r.json()["value"])
    assert graph.get("/users?$select=nope").status_code == 400
    assert graph.get("/users?$select=skills").status_code == 501
    default = graph.get("/users").json()["value"][0]
    assert set(default) == {"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                            "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}
    assert graph.get("/users?$count=true").status_code == 400
    assert graph.get("/users?$count=true", headers=EVENTUAL).json()["@odata.count"] == 6
    r = graph.get("/users/$count", headers=EVENTUAL)
    assert r.text == "6" and r.headers["Content-Type"].startswith("text/plain")
    r = graph.get("/users")
    assert r.headers["OData-Version"] == "4.0" and r.headers["request-id"]
    assert r.headers["Content-Type"].startswith("application/json;odata.metadata=minimal")


def test_basic_permission_limits_properties(graph_for):
    g = graph_for(["User.ReadBasic.All"])
    users = g.get("/users?$select=displayName,department,mail").json()["value"]
    assert users and all(set(u) == {"displayName", "mail"} for u in users)
    r = g.get("/users?$filter=department eq 'Sales'")
    assert r.status_code == 403 and r.json()["error"]["message"] == "Insufficient privileges to complete the operation."


def test_get_and_patch_user(graph_for, m365_emulator, m365_tenant):
    alice = user_id(m365_emulator, m365_tenant, "alice")
    reader = graph_for(["User.Read.All"])
    r = reader.get(f"/users/alice@{m365_tenant[:8]}.contoso.example")
    assert r.status_code == 200 and r.json()["id"] == alice
    assert r.json()["@odata.context"].endswith("$metadata#users/$entity")
    missing = reader.get("/users/nobody@nowhere.example")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    assert reader.request("PATCH", f"/users/{alice}", json={"mobilePhone": "1"}).status_code == 403
    phone = graph_for(["User-Phone.ReadWrite.All"])
    assert phone.request("PATCH", f"/users/{alice}", json={"businessPhones": ["1", "2"]}).status_code == 400
    assert phone.request("PATCH", f"/users/{alice}", json={"jobTitle": "CEO"}).status_code == 403
    r = phone.request("PATCH", f"/users/{alice}", json={"businessPhones": ["+1 425 555 0199"]})
    assert r.status_code == 204 and r.content == b""
    assert reader.get(f"/users/{alice}").json()["businessPhones"] == ["+1 425 555 0199"]


def test_app_only_cannot_change_a_privileged_admins_phones(graph_for, m365_emulator, m365_tenant):
    """Microsoft: sensitive properties of privileged administrators need an app with a higher admin role."""
    admin = user_id(m365_emulator, m365_tenant, "admin")
    writer = graph_for(["User.ReadWrite.All"])
    refused = writer.request("PATCH", f"/users/{admin}", json={"businessPhones": ["100"]})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "Authorization_RequestDenied"
    assert writer.request("PATCH", f"/users/{admin}", json={"jobTitle": "Boss"}).status_code == 204
    alice = user_id(m365_emulator, m365_tenant, "alice")
    assert writer.request("PATCH", f"/users/{alice}", json={"mobilePhone": "+1 206 555 0100"}).status_code == 204


def test_photos_and_etags(graph, m365_emulator, m365_tenant):
    bob = user_id(m365_emulator, m365_tenant, "bob")
    r = graph.get(f"/users/{bob}/photo/$value")
    assert r.status_code == 404
    assert graph.get(f"/users/{bob}/photo").json()["@odata.mediaEtag"] == ""
    etag1 = m365_emulator.put_photo(m365_tenant, bob, b"\xff\xd8jpeg-1", "image/jpeg")["etag"]
    r = graph.get(f"/users/{bob}/photo/$value")
    assert r.content == b"\xff\xd8jpeg-1" and r.headers["Content-Type"] == "image/jpeg" and r.headers["ETag"] == etag1
    assert graph.get(f"/users/{bob}/photo").json()["@odata.mediaEtag"] == etag1
    assert graph.get(f"/users/{bob}/photo/$value", headers={"If-None-Match": etag1}).status_code == 304
    etag2 = m365_emulator.put_photo(m365_tenant, bob, b"\xff\xd8jpeg-1", "image/jpeg")["etag"]
    assert etag2 != etag1


def test_photo_needs_permission(graph_for, m365_emulator, m365_tenant):
    g = graph_for(["GroupMember.Read.All"])
    bob = user_id(m365_emulator, m365_tenant, "bob")
    assert g.get(f"/users/{bob}/photo/$value").status_code == 403


def test_groups_members_and_transitive(graph, m365_emulator, m365_tenant):
    groups = {g["displayName"]: g["id"] for g in graph.get("/groups").json()["value"]}
    everyone = groups["Everyone"]
    direct = graph.get(f"/groups/{everyone}/members").json()["value"]
    assert sorted(m["@odata.type"] for m in direct) == ["#microsoft.graph.group", "#microsoft.graph.user"]
    flat = graph.get(f"/groups/{everyone}/transitiveMembers").json()["value"]
    assert sorted(m.get("displayName") for m in flat) == ["Alice Anders", "Bob Brown", "Carol Clark", "Sales"]
    r = graph.get(f"/groups/{everyone}/transitiveMembers/microsoft.graph.user?$count=true", headers=EVENTUAL)
    assert r.json()["@odata.count"] == 3 and {m["@odata.type"] for m in r.json()["value"]} == {"#microsoft.graph.user"}
    carol = user_id(m365_emulator, m365_tenant, "carol")
    m365_emulator.set_group_members(m365_tenant, groups["Sales"], [carol])
    flat = graph.get(f"/groups/{everyone}/transitiveMembers").json()["value"]
    assert sorted(m.get("displayName") for m in flat) == ["Carol Clark", "Sales"]
    assert graph.get("/groups/00000000-0000-0000-0000-000000000000").status_code == 404


def test_mailbox_settings(graph, graph_for, m365_emulator, m365_tenant):
    alice = user_id(m365_emulator, m365_tenant, "alice")
    body = graph.get(f"/users/{alice}/mailboxSettings").json()
    assert body["userPurpose"] == "user" and body["timeZone"] == "UTC"
    r = graph.get(f"/users/{alice}/mailboxSettings/userPurpose").json()
    assert r["value"] == "user" and r["@odata.context"].endswith(f"users('{alice}')/mailboxSettings/userPurpose")
    m365_emulator.patch_user(m365_tenant, alice, mailboxSettings={"userPurpose": "shared"})
    assert graph.get(f"/users/{alice}/mailboxSettings/userPurpose").json()["value"] == "shared"
    assert graph_for(["User.Read.All"]).get(f"/users/{alice}/mailboxSettings").status_code == 403


def test_deleted_users_are_hidden(graph, m365_emulator, m365_tenant):
    carol = user_id(m365_emulator, m365_tenant, "carol")
    m365_emulator.delete_user(m365_tenant, carol)
    assert carol not in [u["id"] for u in graph.get("/users").json()["value"]]
    assert graph.get(f"/users/{carol}").status_code == 404
    m365_emulator.restore_user(m365_tenant, carol)
    assert graph.get(f"/users/{carol}").status_code == 200
