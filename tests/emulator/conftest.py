"""Helpers for the emulator's own tests: app registrations with a certificate and Graph sessions on them."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import jwt
import pytest
import requests

from flask_pbx365.testing import Certificate, EmulatorHandle, make_certificate

ALL_READ = ["User.Read.All", "GroupMember.Read.All", "ProfilePhoto.Read.All", "MailboxSettings.Read"]


@pytest.fixture(scope="session")
def cert() -> Certificate:
    return make_certificate()


def session_for(em: EmulatorHandle) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = em.ca_path
    return s


def assertion(cert: Certificate, app_id: str, aud: str, *, alg: str = "RS256", lifetime: float = 600,
              **claims: Any) -> str:
    """A client assertion as MSAL builds it (RS256 + x5t, or PS256 + x5t#S256)."""
    import base64

    now = time.time()
    header = {"x5t": base64.urlsafe_b64encode(bytes.fromhex(cert.sha1)).decode().rstrip("=")} if alg == "RS256" \
        else {"x5t#S256": base64.urlsafe_b64encode(bytes.fromhex(cert.sha256)).decode().rstrip("=")}
    body = {"aud": aud, "iss": app_id, "sub": app_id, "jti": str(uuid.uuid4()), "nbf": now, "iat": now,
            "exp": now + lifetime, **claims}
    return jwt.encode(body, cert.private_key_pem, algorithm=alg, headers=header)


@dataclass
class Graph:
    """An app registration in a tenant and a requests session carrying its Graph token."""

    em: EmulatorHandle
    tid: str
    app_id: str
    http: requests.Session

    def url(self, path: str) -> str:
        return f"{self.em.base_url}/v1.0{path}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(path if path.startswith("https://") else self.url(path), timeout=60, **kw)

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.http.request(method, self.url(path), timeout=60, **kw)


def token_for(em: EmulatorHandle, tid: str, app_id: str, cert: Certificate) -> dict:
    endpoint = f"{em.base_url}/{tid}/oauth2/v2.0/token"
    r = session_for(em).post(endpoint, data={
        "grant_type": "client_credentials", "client_id": app_id, "scope": "https://graph.microsoft.com/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(cert, app_id, endpoint)}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def graph_for(m365_emulator: EmulatorHandle, m365_tenant: str, cert: Certificate) -> Callable[..., Graph]:
    """``graph_for(permissions, tid=None, consent=True)`` -> a :class:`Graph` session for a new app."""
    def make(permissions: list[str], tid: str | None = None, consent: bool = True) -> Graph:
        tenant = tid or m365_tenant
        app_id = m365_emulator.add_application(tenant, displayName="PBX", certificates=[cert.certificate_pem],
                                               permissions=permissions, adminConsent=consent)
        http = session_for(m365_emulator)
        http.headers["Authorization"] = "Bearer " + token_for(m365_emulator, tenant, app_id, cert)["access_token"]
        return Graph(m365_emulator, tenant, app_id, http)
    return make


@pytest.fixture
def graph(graph_for) -> Graph:
    return graph_for(ALL_READ)


def user_id(em: EmulatorHandle, tid: str, nick: str) -> str:
    return next(u["id"] for u in em.users(tid) if u["userPrincipalName"].startswith(nick + "@"))
