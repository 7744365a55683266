"""Paging over nextLinks, delta rounds, malformed pages and hostile links."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from flask_pbx365.exceptions import (DeltaTokenExpiredError, FeatureUnavailableError, MalformedResponseError,
                                     UnsafeLinkError)
from flask_pbx365.graph import tokens as token_registry

from .conftest import new_env


def test_paging_over_more_than_999_users(graph_env):
    cert = graph_env.credentials.certificate_pem.decode()
    graph_env.emulator.generate(tenantId=graph_env.tenant_id, users=1200, contactsPerUser=0, eventsPerUser=0,
                                photos=False, seed=7, applications=[{
                                    "appId": graph_env.app_id, "displayName": "PBX portal", "certificates": [cert],
                                    "permissions": ["User.Read.All"], "adminConsent": True}])
    with graph_env.client() as client:
        pages = list(client.iter_pages("/users", params={"$top": 999, "$select": "id,displayName"}))
        ids = [u["id"] for page in pages for u in page["value"]]
    assert len(pages) >= 2
    assert len(ids) == len(set(ids)) == 1200
    follow_ups = graph_env.requests("/v1.0/users", "GET")[1:]
    assert follow_ups and all("skiptoken" in e["query"].lower() for e in follow_ups)


def test_empty_page_with_next_link_is_followed(graph_env):
    base = graph_env.emulator.base_url
    graph_env.emulator.add_fault(method="GET", path=r"^/v1\.0/users$", times=1,
                                 body={"value": [], "@odata.nextLink": f"{base}/v1.0/users?$top=2"})
    with graph_env.client() as client:
        ids = [u["id"] for u in client.iter_items("/users")]
    assert sorted(ids) == sorted(graph_env.user_ids)


@pytest.mark.parametrize("body", ["<html>gateway says hi</html>", {"items": []}, {"value": "nope"}])
def test_malformed_page_names_the_url(graph_env, body):
    graph_env.emulator.add_fault(method="GET", path=r"^/v1\.0/users", times=1, body=body)
    with graph_env.client() as client, pytest.raises(MalformedResponseError) as info:
        list(client.iter_items("/users", params={"$top": 2}))
    assert f"{graph_env.emulator.base_url}/v1.0/users" in str(info.value)


def test_hostile_next_link_is_not_followed(graph_env):
    emulator = graph_env.emulator
    port = urlsplit(emulator.base_url).port
    # "localhost" reaches the very same emulator, so the request log would show it if the link were followed.
    for marker, link in (("evil1", "https://evil.example/v1.0/users?$skiptoken=evil1"),
                         ("evil2", f"https://localhost:{port}/v1.0/users?$skiptoken=evil2"),
                         ("evil3", f"http://127.0.0.1:{port}/v1.0/users?$skiptoken=evil3")):
        emulator.add_fault(method="GET", path=r"^/v1\.0/users$", times=1,
                           body={"value": [{"id": "x"}], "@odata.nextLink": link})
        with graph_env.client() as client, pytest.raises(UnsafeLinkError):
            list(client.iter_items("/users"))
        assert not [e for e in emulator.requests_log() if marker in e["query"] or marker in e["path"]]


def test_delta_round_changes_and_resync(graph_env):
    emulator = graph_env.emulator
    with graph_env.client() as client:
        first = client.delta("/users/delta", params={"$select": "id,displayName,businessPhones"})
        assert first.delta_link is None
        seen = {item["id"] for page in first for item in page}
        assert seen == set(graph_env.user_ids)
        assert first.delta_link and "deltatoken" in first.delta_link.lower()
        with pytest.raises(RuntimeError):
            list(first)

        changed, removed = graph_env.user_ids[0], graph_env.user_ids[1]
        emulator.patch_user(graph_env.tenant_id, changed, displayName="Ada King")
        emulator.delete_user(graph_env.tenant_id, removed)
        added_id = emulator.add_user(graph_env.tenant_id, displayName="Katherine Johnson", mailNickname="kj")["id"]

        second = client.delta(first.delta_link)
        items = {item["id"]: item for page in second for item in page}
        assert items[changed]["displayName"] == "Ada King"
        assert items[removed]["@removed"]["reason"] in ("changed", "deleted")
        assert added_id in items and "@removed" not in items[added_id]
        assert second.delta_link

        third = client.delta(second.delta_link)
        assert [item for page in third for item in page] == []

        emulator.reset_delta(graph_env.tenant_id)
        with pytest.raises(DeltaTokenExpiredError):
            list(client.delta(third.delta_link))


def test_contact_delta_missing_in_a_cloud_is_feature_unavailable(m365_emulator, key_pair):
    china = new_env(m365_emulator, key_pair, cloud="china")
    global_ = new_env(m365_emulator, key_pair)
    try:
        with china.client() as client, pytest.raises(FeatureUnavailableError) as info:
            list(client.delta(f"/users/{china.user_ids[0]}/contactFolders/delta", mailbox=china.user_ids[0]))
        assert info.value.status == 501
        with global_.client() as client:
            round_ = client.delta(f"/users/{global_.user_ids[0]}/contactFolders/delta")
            assert list(round_) and round_.delta_link
    finally:
        token_registry.forget(china.credentials)
        token_registry.forget(global_.credentials)
