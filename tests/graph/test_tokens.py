"""App-only tokens through MSAL with a certificate, against the emulator's Entra."""
from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import parse_qs

import pytest

from flask_pbx365.exceptions import AuthenticationError
from flask_pbx365.graph import GraphClient
from flask_pbx365.graph import tokens as token_registry

from .conftest import ALL_PERMISSIONS


def _jwt_part(token: str, index: int) -> dict:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _capture_assertions(client) -> list[dict]:
    """Record the JOSE header of every client assertion MSAL sends from now on (read off the real traffic)."""
    headers: list[dict] = []

    def hook(response, **_):
        body = response.request.body or ""
        body = body.decode() if isinstance(body, bytes) else body
        assertion = parse_qs(body).get("client_assertion")
        if assertion:
            headers.append(_jwt_part(assertion[0], 0))

    client.tokens._entry().http.session.hooks["response"].append(hook)
    return headers


@pytest.mark.parametrize("algorithm, thumbprint_header, other_header", [
    ("PS256", "x5t#S256", "x5t"),
    ("RS256", "x5t", "x5t#S256"),
])
def test_certificate_assertion_algorithms(graph_env, algorithm, thumbprint_header, other_header):
    token_registry.forget(graph_env.credentials)  # no token cached by the fixture's setup
    with graph_env.client(algorithm=algorithm) as client:
        sent = _capture_assertions(client)
        users = list(client.iter_items("/users"))
        roles = client.token_roles()
    assert {u["id"] for u in users} == set(graph_env.user_ids)
    assert sorted(roles) == sorted(ALL_PERMISSIONS)
    assert len(sent) == 1 and sent[0]["alg"] == algorithm
    expected = graph_env.credentials.sha256_thumbprint if algorithm == "PS256" else graph_env.credentials.sha1_thumbprint
    assert base64.urlsafe_b64decode(sent[0][thumbprint_header] + "==").hex().upper() == expected
    assert other_header not in sent[0]
    # the token names this app and directory
    claims = _jwt_part(client.tokens.get(), 1)
    assert claims["appid"] == graph_env.app_id or claims.get("azp") == graph_env.app_id
    assert claims["tid"] == graph_env.tenant_id


def test_token_is_cached_per_tenant_app(graph_env):
    token_registry.forget(graph_env.credentials)
    with graph_env.client() as first, graph_env.client() as second:
        first.get("/users")
        second.get("/users")
    assert len(graph_env.token_requests()) == 1


def test_unregistered_certificate(graph_env, other_key_pair):
    key, cert = other_key_pair
    creds = graph_env.with_credentials(private_key_pem=key, certificate_pem=cert)
    try:
        with pytest.raises(AuthenticationError) as info:
            with GraphClient(creds, timeout=5) as client:
                client.get("/users")
    finally:
        token_registry.forget(creds)
    message = str(info.value)
    assert info.value.aadsts == "700027"
    assert "Certificates & secrets" in message and "public_key.pem" in message
    assert creds.sha256_thumbprint in message


def test_wrong_tenant(graph_env):
    missing = str(uuid.uuid4())
    creds = graph_env.with_credentials(directory_id=missing)
    with pytest.raises(AuthenticationError) as info:
        with GraphClient(creds, timeout=5) as client:
            client.get("/users")
    assert info.value.aadsts == "90002"
    assert missing in str(info.value) and "Directory" in str(info.value)


def test_wrong_client_id(graph_env):
    creds = graph_env.with_credentials(client_id=str(uuid.uuid4()))
    try:
        with pytest.raises(AuthenticationError) as info:
            with GraphClient(creds, timeout=5) as client:
                client.get("/users")
    finally:
        token_registry.forget(creds)
    assert info.value.aadsts == "700016"
    assert creds.client_id in str(info.value) and "App registrations" in str(info.value)


def test_expired_token_mid_run_gets_exactly_one_new_token(graph_env):
    with graph_env.client() as client:
        client.get("/users")
        graph_env.emulator.clear_requests()
        graph_env.emulator.add_fault(method="GET", path=r"^/v1\.0/users$", status=401, times=1)
        page = client.get("/users")
        assert len(page["value"]) == len(graph_env.user_ids)
        assert len(graph_env.token_requests()) == 1
        assert [e["status"] for e in graph_env.requests("/v1.0/users", "GET")] == [401, 200]

        graph_env.emulator.clear_requests()
        graph_env.emulator.add_fault(method="GET", path=r"^/v1\.0/users$", status=401, times=5)
        with pytest.raises(AuthenticationError):
            client.get("/users")
        assert len(graph_env.token_requests()) == 1  # one fresh token, then give up
        assert len(graph_env.requests("/v1.0/users", "GET")) == 2
