"""An emulator tenant with mailboxes and app registrations, and MSAL-authenticated Graph sessions on it."""
from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

OUTLOOK_PERMISSIONS = ["Contacts.Read", "Calendars.Read", "Mail.Send", "Mail.ReadWrite", "User.Read.All",
                       "MailboxSettings.Read"]


def key_pair() -> tuple[bytes, bytes, str]:
    """(private key PEM, certificate PEM, SHA-1 thumbprint hex) of a fresh self-signed certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "outlook tests")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), cert.fingerprint(hashes.SHA1()).hex()


@pytest.fixture(scope="session")
def keys() -> tuple[bytes, bytes, str]:
    return key_pair()


@dataclass
class Tenant:
    """One emulator tenant: admin calls, and Graph sessions for registered apps."""

    base: str
    ca: str
    id: str
    users: dict[str, str]                     # nickname -> object id
    keys: tuple[bytes, bytes, str]
    sessions: dict[str, requests.Session] = field(default_factory=dict)

    def admin(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(method, f"{self.base}/_emulator/tenants/{self.id}{path}", verify=self.ca,
                                timeout=30, **kw)

    def app(self, permissions: list[str]) -> requests.Session:
        """A Graph session (bearer token from MSAL, certificate credential) of an app with ``permissions``."""
        name = ",".join(sorted(permissions))
        if name not in self.sessions:
            key_pem, cert_pem, thumb = self.keys
            r = self.admin("POST", "/applications", json={
                "displayName": f"pbx {name}", "redirectUris": [], "certificates": [cert_pem.decode()],
                "permissions": permissions, "adminConsent": True})
            assert r.status_code == 201, r.text
            msal_app = msal.ConfidentialClientApplication(
                r.json()["appId"], client_credential={"private_key": key_pem.decode(), "thumbprint": thumb},
                authority=f"{self.base}/{self.id}", http_client=self._session(), instance_discovery=False)
            result = msal_app.acquire_token_for_client([f"{self.base}/.default"])
            assert "access_token" in result, result
            s = self._session()
            s.headers["Authorization"] = f"Bearer {result['access_token']}"
            self.sessions[name] = s
        return self.sessions[name]

    def _session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False          # else REQUESTS_CA_BUNDLE would override the emulator's CA
        s.verify = self.ca
        return s

    def graph(self, permissions: list[str] | None = None) -> "Graph":
        return Graph(self.base, self.app(permissions or OUTLOOK_PERMISSIONS))


@dataclass
class Graph:
    base: str
    session: requests.Session

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        url = path if path.startswith("http") else f"{self.base}/v1.0{path}"
        return self.session.request(method, url, timeout=30, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self("GET", path, **kw)

    def pages(self, path: str, **kw: Any) -> tuple[list[dict], dict]:
        """Follow nextLinks; (all items, last page)."""
        items, r = [], self.get(path, **kw)
        while True:
            assert r.status_code == 200, r.text
            items += r.json()["value"]
            if "@odata.nextLink" not in r.json():
                return items, r.json()
            r = self.get(r.json()["@odata.nextLink"], **kw)


def make_tenant(emulator: Any, keys: tuple, cloud: str = "global") -> Tenant:
    """A fresh tenant in ``cloud`` with a user (amy), a shared mailbox (reception) and a guest without mail."""
    tid = str(uuid.uuid4())
    domain = f"t{tid[:8]}.example"
    users = {nick: str(uuid.uuid4()) for nick in ("amy", "reception", "nomail")}
    fixture = {
        "tenant": {"id": tid, "displayName": "Contoso", "domains": [domain], "cloud": cloud},
        "users": [
            {"id": users["amy"], "userPrincipalName": f"amy@{domain}", "givenName": "Amy", "surname": "Adams",
             "mail": f"amy@{domain}"},
            {"id": users["reception"], "userPrincipalName": f"reception@{domain}", "displayName": "Reception",
             "mail": f"reception@{domain}", "mailboxSettings": {"userPurpose": "shared"}},
            {"id": users["nomail"], "userPrincipalName": f"guest_x#EXT#@{domain}", "displayName": "Guest",
             "userType": "Guest"},
        ]}
    base, ca = emulator.base_url.rstrip("/"), str(emulator.ca_path)
    r = requests.post(f"{base}/_emulator/tenants", json=fixture, verify=ca, timeout=30)
    assert r.status_code == 201, r.text
    return Tenant(base, ca, r.json()["id"], users, keys)


@pytest.fixture(scope="module")
def tenant(m365_emulator, keys) -> Tenant:
    return make_tenant(m365_emulator, keys)


class Listener:
    """A real local HTTP endpoint for webhooks: answers Graph's validation handshake and records notifications."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.validations: list[str] = []
        self.mode = "ok"              # ok | wrong | html | slow-fail
        self._cond = threading.Condition()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/notify"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @Request.application
    def _app(self, request: Request) -> Response:
        token = request.args.get("validationToken")
        if token is not None:
            self.validations.append(token)
            if self.mode == "wrong":
                return Response("not-the-token", content_type="text/plain")
            if self.mode == "html":
                return Response(token, content_type="text/html")
            return Response(token, content_type="text/plain; charset=utf-8")
        with self._cond:
            self.received.append(request.get_json())
            self._cond.notify_all()
        return Response("", status=202)

    def wait_for(self, pred: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        """The first notification item (``value[i]``) matching ``pred`` received within ``timeout`` seconds."""
        deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
        with self._cond:
            while True:
                for body in self.received:
                    for item in body.get("value", []):
                        if pred(item):
                            return item
                left = (deadline - dt.datetime.now()).total_seconds()
                if left <= 0:
                    raise AssertionError(f"no matching notification within {timeout}s: {self.received}")
                self._cond.wait(left)

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()
