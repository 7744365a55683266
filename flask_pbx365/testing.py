"""pytest plugin (entry point ``pbx365_emulator``): a running Microsoft 365 emulator for tests.

Fixtures:

``m365_emulator`` (session scope)
    Starts ``python -m flask_pbx365.emulator --port 0`` in a subprocess with a temporary state dir, waits for its
    ``READY`` line and yields an :class:`EmulatorHandle`: ``.base_url`` (``B``, e.g. ``https://127.0.0.1:40123``),
    ``.ca_path`` (the CA bundle to verify it with), ``.session`` (a ``requests.Session`` trusting it) and admin
    helpers: ``create_tenant(fixture) -> id``, ``add_application(tid, **fields) -> appId``,
    ``patch_application(tid, app_id, **fields)``, ``add_user(tid, **user) -> dict``, ``users(tid)``, ``patch_user(tid, uid, **props)``,
    ``delete_user(tid, uid, permanent=False)``, ``restore_user(tid, uid)``, ``put_photo(tid, uid, data, content_type)``,
    ``set_group_members(tid, gid, ids)``, ``add_fault(**spec) -> id``, ``clear_faults()``, ``requests_log()``,
    ``clear_requests()``, ``outbox(tid)``, ``drafts(tid)``, ``generate(**spec) -> dict``, ``reset_delta(tid)``,
    ``tenant(tid) -> dict`` (counts), ``patch_tenant(tid, **fields)`` and the generic ``admin(method, path, json=None)``.

``m365_tenant`` (function scope)
    A fresh tenant (new GUIDs per test) built from :func:`default_tenant_fixture`; returns its id. Its users, all
    with password ``Passw0rd!``, on the domain ``{first 8 chars of the id}.contoso.example``: ``admin`` (Global
    Administrator), ``alice`` (Sales), ``bob`` (Sales), ``carol`` (Engineering), ``dave`` (disabled), and a guest;
    groups ``Sales`` (alice, bob) and ``Everyone`` (the ``Sales`` group nested, plus carol).

``--pbx365-host MODULE:FACTORY``
    Runs the host-adapter conformance kit (:mod:`flask_pbx365.conformance`) against the harness ``FACTORY``
    returns: ``pytest --pbx365-host mypbx.adapter:make_harness``.

Also :func:`make_certificate` (a self-signed key pair for app registrations) for tests that need one.
Nothing heavy is imported at module import: pytest loads this plugin in every session.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

PASSWORD = "Passw0rd!"
READY_TIMEOUT = 60


@dataclass
class Certificate:
    """A key pair for an app registration: PEMs plus the thumbprints Entra shows (hex, upper case)."""

    private_key_pem: str
    certificate_pem: str
    sha1: str
    sha256: str


def make_certificate(common_name: str = "pbx365-test", days: int = 365, *,
                     not_before: Any = None) -> Certificate:
    """A self-signed RSA 2048 certificate valid for ``days`` (what ``public_key.pem`` holds), from five minutes ago
    or from ``not_before`` (an aware datetime: a certificate that has already expired, for instance)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    start = not_before or now - dt.timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days)).sign(key, hashes.SHA256()))
    return Certificate(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()).decode(),
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        cert.fingerprint(hashes.SHA1()).hex().upper(), cert.fingerprint(hashes.SHA256()).hex().upper())


def default_tenant_fixture(tenant_id: str | None = None) -> dict:
    """The tenant fixture ``m365_tenant`` loads (fresh GUIDs unless ``tenant_id`` is given)."""
    tid = tenant_id or str(uuid.uuid4())
    domain = f"{tid[:8]}.contoso.example"
    ids = {n: str(uuid.uuid4()) for n in ("admin", "alice", "bob", "carol", "dave", "guest", "sales", "everyone")}

    def user(name: str, given: str, surname: str, **extra: Any) -> dict:
        return {"id": ids[name], "userPrincipalName": f"{name}@{domain}", "givenName": given, "surname": surname,
                "displayName": f"{given} {surname}", "mail": f"{name}@{domain}", "password": PASSWORD, **extra}

    return {
        "tenant": {"id": tid, "displayName": "Contoso", "domains": [domain], "cloud": "global"},
        "users": [
            user("admin", "Adele", "Admin", directoryRoles=["Global Administrator"], department="IT"),
            user("alice", "Alice", "Anders", department="Sales", jobTitle="Account Manager",
                 businessPhones=["+1 425 555 0101"], mobilePhone="+1 206 555 0101"),
            user("bob", "Bob", "Brown", department="Sales", businessPhones=["(425) 555-0102"]),
            user("carol", "Carol", "Clark", department="Engineering", jobTitle="Engineer"),
            user("dave", "Dave", "Davis", department="Engineering", accountEnabled=False),
            {"id": ids["guest"], "userPrincipalName": f"gina_partner.example#EXT#@{domain}", "givenName": "Gina",
             "surname": "Guest", "displayName": "Gina Guest", "mail": "gina@partner.example", "userType": "Guest",
             "password": PASSWORD},
        ],
        "groups": [
            {"id": ids["sales"], "displayName": "Sales", "members": [ids["alice"], ids["bob"]]},
            {"id": ids["everyone"], "displayName": "Everyone", "members": [ids["sales"], ids["carol"]]},
        ],
    }


class EmulatorError(RuntimeError):
    """An admin call to the emulator failed (the message carries the status and answer)."""


@dataclass
class EmulatorHandle:
    """A running emulator: its base URL, CA bundle and admin API helpers."""

    base_url: str
    ca_path: str
    process: Any = None
    session: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.session is None:
            import requests

            self.session = requests.Session()
            self.session.trust_env = False  # else REQUESTS_CA_BUNDLE would override the emulator's CA
            self.session.verify = self.ca_path

    # --- generic -----------------------------------------------------------------------------------------
    def admin(self, method: str, path: str, json: Any = None, *, data: bytes | None = None,
              headers: dict | None = None, params: dict | None = None) -> Any:
        """Call ``/_emulator{path}``; returns the decoded JSON (None for an empty answer) or raises."""
        url = f"{self.base_url}/_emulator{path}"
        resp = self.session.request(method, url, json=json, data=data, headers=headers, params=params, timeout=60)
        if resp.status_code >= 400:
            raise EmulatorError(f"{method} {path}: {resp.status_code} {resp.text}")
        return resp.json() if resp.content else None

    # --- tenants and objects -----------------------------------------------------------------------------
    def create_tenant(self, fixture: dict) -> str:
        return self.admin("POST", "/tenants", fixture)["id"]

    def tenant(self, tid: str) -> dict:
        return self.admin("GET", f"/tenants/{tid}")

    def patch_tenant(self, tid: str, **fields: Any) -> dict:
        return self.admin("PATCH", f"/tenants/{tid}", fields)

    def add_application(self, tid: str, **fields: Any) -> str:
        return self.admin("POST", f"/tenants/{tid}/applications", fields)["appId"]

    def patch_application(self, tid: str, app_id: str, **fields: Any) -> dict:
        return self.admin("PATCH", f"/tenants/{tid}/applications/{app_id}", fields)

    def add_user(self, tid: str, **user: Any) -> dict:
        return self.admin("POST", f"/tenants/{tid}/users", user)

    def users(self, tid: str) -> list[dict]:
        """Every user of the tenant as stored (``deleted`` marks soft-deleted ones)."""
        return self.admin("GET", f"/tenants/{tid}/users")

    def patch_user(self, tid: str, uid: str, **props: Any) -> dict:
        return self.admin("PATCH", f"/tenants/{tid}/users/{uid}", props)

    def delete_user(self, tid: str, uid: str, *, permanent: bool = False) -> None:
        self.admin("DELETE", f"/tenants/{tid}/users/{uid}", params={"permanent": "true"} if permanent else None)

    def restore_user(self, tid: str, uid: str) -> dict:
        return self.admin("POST", f"/tenants/{tid}/users/{uid}/restore")

    def put_photo(self, tid: str, uid: str, data: bytes, content_type: str = "image/jpeg") -> dict:
        return self.admin("PUT", f"/tenants/{tid}/users/{uid}/photo", data=data,
                          headers={"Content-Type": content_type})

    def delete_photo(self, tid: str, uid: str) -> None:
        self.admin("DELETE", f"/tenants/{tid}/users/{uid}/photo")

    def set_group_members(self, tid: str, gid: str, ids: list[str]) -> dict:
        return self.admin("PUT", f"/tenants/{tid}/groups/{gid}/members", list(ids))

    def reset_delta(self, tid: str) -> None:
        self.admin("POST", f"/tenants/{tid}/delta/reset")

    def outbox(self, tid: str) -> list[dict]:
        return self.admin("GET", f"/tenants/{tid}/outbox")

    def drafts(self, tid: str) -> list[dict]:
        """Drafts not sent or deleted yet, of every mailbox of the tenant."""
        return self.admin("GET", f"/tenants/{tid}/drafts")

    def generate(self, **spec: Any) -> dict:
        return self.admin("POST", "/generate", spec)

    # --- faults and request log --------------------------------------------------------------------------
    def add_fault(self, **spec: Any) -> str:
        return self.admin("POST", "/faults", spec)["id"]

    def clear_faults(self) -> None:
        self.admin("DELETE", "/faults")

    def requests_log(self) -> list[dict]:
        return self.admin("GET", "/requests")

    def clear_requests(self) -> None:
        self.admin("DELETE", "/requests")

    # --- lifecycle ---------------------------------------------------------------------------------------
    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_emulator(state_dir: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 0,
                   tenant_files: list[str] = (), log_path: str | os.PathLike | None = None,
                   python: str | None = None) -> EmulatorHandle:
    """Start the emulator in a subprocess and wait for its READY line (``EmulatorError`` if it dies).

    ``python`` is the interpreter to run it with (default: this one), e.g. a venv with the installed wheel.
    """
    cmd = [python or sys.executable, "-m", "flask_pbx365.emulator", "--host", host, "--port", str(port),
           "--state-dir", str(state_dir)]
    for f in tenant_files:
        cmd += ["--tenant-file", str(f)]
    log = open(log_path or Path(state_dir) / "emulator.log", "ab")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    found: dict[str, str] = {}

    def reader() -> None:
        for line in proc.stdout:  # keep draining so the child never blocks on a full pipe
            if line.startswith("READY ") and "base" not in found:
                parts = line.split()
                found["base"], found["ca"] = parts[1], parts[2].split("=", 1)[1]

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    import time

    deadline = time.monotonic() + READY_TIMEOUT
    while "base" not in found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise EmulatorError(f"The emulator did not start; see {log.name}.")
        time.sleep(0.05)
    return EmulatorHandle(found["base"], found["ca"], proc)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pbx365", "flask_pbx365")
    group.addoption("--pbx365-host", metavar="MODULE:FACTORY", default=None,
                    help="run the PBXHost conformance kit against the HostHarness that FACTORY returns "
                         "(see flask_pbx365.conformance)")


def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """With ``--pbx365-host``, the kit's module is collected too (alone, when no other path is given)."""
    if getattr(early_config.known_args_namespace, "pbx365_host", None):
        args.append(str(Path(__file__).with_name("conformance.py")))


@pytest.fixture(scope="session")
def m365_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    """A running Microsoft 365 emulator shared by the whole test session."""
    handle = start_emulator(tmp_path_factory.mktemp("m365-emulator"))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def m365_tenant(m365_emulator: EmulatorHandle) -> str:
    """A fresh tenant with a few users and groups (see :func:`default_tenant_fixture`); returns its id."""
    return m365_emulator.create_tenant(default_tenant_fixture())
