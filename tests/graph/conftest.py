"""Graph client tests run against the Microsoft 365 emulator as the ``custom`` cloud."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

import pytest

from flask_pbx365.clouds import resolve_cloud
from flask_pbx365.crypto import generate_key_pair
from flask_pbx365.graph import AppCredentials, GraphClient
from flask_pbx365.graph import tokens as token_registry

ALL_PERMISSIONS = ["User.Read.All", "GroupMember.Read.All", "Contacts.Read", "MailboxSettings.Read", "Mail.Send",
                   "Calendars.Read"]


def make_key_pair(days: int = 365, cn: str = "pbx365 test") -> tuple[bytes, bytes]:
    """(PKCS#8 private key PEM, self-signed certificate PEM) from the generator the Configure tab and
    ``keys generate`` use, so MSAL is proven with exactly the certificates admins upload."""
    pair = generate_key_pair(cn, days=days)
    return pair.private_key_pem, pair.certificate_pem


@pytest.fixture(scope="session")
def key_pair() -> tuple[bytes, bytes]:
    return make_key_pair()


@pytest.fixture(scope="session")
def other_key_pair() -> tuple[bytes, bytes]:
    return make_key_pair(cn="never uploaded")


USERS = [
    {"displayName": "Ada Lovelace", "givenName": "Ada", "surname": "Lovelace", "mailNickname": "ada",
     "businessPhones": ["+1 555 0100"], "department": "Engineering"},
    {"displayName": "Alan Turing", "givenName": "Alan", "surname": "Turing", "mailNickname": "alan",
     "businessPhones": [], "department": "Research"},
    {"displayName": "Grace Hopper", "givenName": "Grace", "surname": "Hopper", "mailNickname": "grace",
     "businessPhones": [], "department": "Engineering"},
]


@dataclass
class GraphEnv:
    """An emulator tenant with an app registration and matching credentials."""

    emulator: Any
    tenant_id: str
    app_id: str
    credentials: AppCredentials
    user_ids: list[str]

    def client(self, **kw: Any) -> GraphClient:
        """A client with test-sized timeouts and backoff (override any of them)."""
        options = {"timeout": 5, "max_retries": 3, "max_backoff": 0.05, "backoff_base": 0.01}
        options.update(kw)
        return GraphClient(self.credentials, **options)

    def with_credentials(self, **changes: Any) -> AppCredentials:
        return replace(self.credentials, **changes)

    def requests(self, path_part: str = "", method: str | None = None) -> list[dict]:
        return [e for e in self.emulator.requests_log()
                if path_part in e["path"] and (method is None or e["method"] == method)]

    def token_requests(self) -> list[dict]:
        return [e for e in self.emulator.requests_log() if e["path"].endswith("/oauth2/v2.0/token")]


def new_env(emulator: Any, key_pair: tuple[bytes, bytes], permissions: list[str] | None = None,
            cloud: str = "global") -> GraphEnv:
    tenant_id = str(uuid.uuid4())
    emulator.create_tenant({
        "tenant": {"id": tenant_id, "displayName": "Contoso", "domains": [f"t{tenant_id[:8]}.example"],
                   "cloud": cloud},
        "users": [dict(u, id=str(uuid.uuid4())) for u in USERS],
    })
    key_pem, cert_pem = key_pair
    app_id = emulator.add_application(tenant_id, displayName="PBX portal", redirectUris=[],
                                      certificates=[cert_pem.decode()],
                                      permissions=ALL_PERMISSIONS if permissions is None else permissions,
                                      adminConsent=True)
    cloud_obj = resolve_cloud("custom", login_url=emulator.base_url, graph_url=emulator.base_url,
                              ca_bundle=str(emulator.ca_path))
    credentials = AppCredentials(tenant_key=f"pbx-{tenant_id[:8]}", client_id=app_id, directory_id=tenant_id,
                                 cloud=cloud_obj, private_key_pem=key_pem, certificate_pem=cert_pem)
    with GraphClient(credentials) as client:
        user_ids = [u["id"] for u in client.iter_items("/users")]
    return GraphEnv(emulator, tenant_id, app_id, credentials, user_ids)


@pytest.fixture
def graph_env(m365_emulator, key_pair):
    """A fresh tenant + app with every permission; faults and the request log cleared around the test."""
    m365_emulator.clear_faults()
    env = new_env(m365_emulator, key_pair)
    m365_emulator.clear_requests()
    yield env
    m365_emulator.clear_faults()
    token_registry.forget(env.credentials)
    assert_sent_paths_in_csdl(m365_emulator.requests_log())


def assert_sent_paths_in_csdl(log: list[dict]) -> None:
    """Every Graph path (and ``$select``) the client sent, ``$batch`` items included, exists in v1.0's CSDL."""
    from urllib.parse import parse_qs

    from flask_pbx365.emulator import csdl

    schema = csdl.schema()
    for entry in log:
        path = entry["path"]
        if not path.startswith("/v1.0/") or path == "/v1.0/$batch" or "evil" in (entry.get("query") or ""):
            continue
        type_name = schema.resolve_path(path)  # KeyError: Graph has no such path
        entity = type_name[11:-1] if type_name.startswith("Collection(") else type_name
        members = {**schema.properties(entity), **schema.navigation(entity)}
        for prop in (parse_qs(entry.get("query") or "").get("$select") or [""])[0].split(","):
            assert not prop or prop in members, f"{entry['method']} {path}: $select={prop} is not in {entity}"
