"""TLS trust from configuration only, 403 advice, and the connection test."""
from __future__ import annotations

import certifi
import pytest

from flask_pbx365.clouds import resolve_cloud
from flask_pbx365.exceptions import ConnectionFailedError, PermissionMissingError
from flask_pbx365.connection import check_credentials
from flask_pbx365.features import FEATURES
from flask_pbx365.graph import GraphClient

CHECKS = {name: alts for feature in FEATURES for name, alts in feature.permissions.items()}
from flask_pbx365.graph import tokens as token_registry

from .conftest import new_env


def test_requests_ca_bundle_cannot_override_configured_trust(graph_env, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # would not trust the emulator
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    with graph_env.client() as client:
        assert len(client.get("/users")["value"]) == len(graph_env.user_ids)


def test_without_ca_bundle_the_emulator_is_not_trusted(graph_env, monkeypatch):
    emulator = graph_env.emulator
    # Even an environment that trusts the emulator must not add trust the configuration did not give.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.ca_path))
    cloud = resolve_cloud("custom", login_url=emulator.base_url, graph_url=emulator.base_url)
    creds = graph_env.with_credentials(cloud=cloud)
    with pytest.raises(ConnectionFailedError) as info:
        with GraphClient(creds, timeout=5) as client:
            client.get("/users")
    message = str(info.value)
    assert "TLS certificate verification failed" in message and "CA bundle" in message
    assert info.value.code == "tlsError"
    assert not graph_env.token_requests()


def test_missing_permission_names_it(m365_emulator, key_pair):
    env = new_env(m365_emulator, key_pair, permissions=["User.Read.All"])
    try:
        with env.client() as client, pytest.raises(PermissionMissingError) as info:
            client.get(f"/users/{env.user_ids[0]}/contacts")
    finally:
        token_registry.forget(env.credentials)
    assert info.value.permission == "Contacts.Read"
    assert "Missing application permission Contacts.Read" in str(info.value)
    assert "Entra > API permissions" in str(info.value)


def test_connection_with_partial_permissions(m365_emulator, key_pair):
    env = new_env(m365_emulator, key_pair, permissions=["User.Read.All", "Contacts.Read", "Calendars.Read"])
    try:
        result = check_credentials(env.credentials, CHECKS, timeout=5)
    finally:
        token_registry.forget(env.credentials)
    assert result["ok"] is True and result["error"] is None
    assert result["granted"] == ["Calendars.Read", "Contacts.Read", "User.Read.All"]
    features = result["features"]
    assert features["user_sync"] == {"ok": True, "missing": []}
    assert features["photos"]["ok"] and features["contacts"]["ok"] and features["calendar"]["ok"]
    assert features["shared_mailboxes"] == {"ok": False, "missing": ["MailboxSettings.Read"]}
    assert features["mail"] == {"ok": False, "missing": ["Mail.Send"]}
    assert features["group_filter"] == {"ok": False, "missing": ["GroupMember.Read.All"]}
    assert features["phone_write_back"] == {"ok": False, "missing": ["User-Phone.ReadWrite.All"]}


def test_connection_failure_reports_the_reason(graph_env, other_key_pair):
    key, cert = other_key_pair
    creds = graph_env.with_credentials(private_key_pem=key, certificate_pem=cert)
    try:
        result = check_credentials(creds, CHECKS, timeout=5)
    finally:
        token_registry.forget(creds)
    assert result["ok"] is False and result["granted"] == []
    assert "AADSTS700027" in result["error"]
    assert not any(f["ok"] for f in result["features"].values())


def test_consent_granted_after_the_token_was_issued_takes_effect_at_once(m365_emulator, key_pair):
    env = new_env(m365_emulator, key_pair, permissions=["User.Read.All"])
    try:
        with env.client() as client:
            client.get("/users")  # a token without Contacts.Read is cached now
            m365_emulator.patch_application(env.tenant_id, env.app_id,
                                            permissions=["User.Read.All", "Contacts.Read"], adminConsent=True)
            m365_emulator.clear_requests()
            assert "value" in client.get(f"/users/{env.user_ids[0]}/contacts")
            assert len(env.token_requests()) == 1, "one fresh token, not one per call"
            m365_emulator.clear_requests()
            with pytest.raises(PermissionMissingError) as info:
                client.get(f"/users/{env.user_ids[0]}/calendar/events")
            assert info.value.permission == "Calendars.Read"
            assert len(env.token_requests()) == 1, "a still-missing role refreshes the token once, then fails"
    finally:
        token_registry.forget(env.credentials)
