"""User sync test rig: the demo portal's tenant ``acme`` connected to a fresh emulator tenant.

``SyncEnv`` runs syncs the way production does (a run row + an RQ job executed by a real worker, here in burst
mode) and reads results the way clients see them: the demo JSON API and the run's JSON.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

PERMISSIONS = ["User.Read.All", "GroupMember.Read.All", "ProfilePhoto.Read.All", "User-Phone.ReadWrite.All"]


def user_fixture(domain: str, name: str, given: str | None, surname: str | None, **extra: Any) -> dict:
    user = {"id": str(uuid.uuid4()), "userPrincipalName": f"{name}@{domain}", "givenName": given,
            "surname": surname, "displayName": " ".join(x for x in (given, surname) if x) or name,
            "mail": f"{name}@{domain}", "userType": "Member", "accountEnabled": True}
    user.update(extra)
    return user


@dataclass
class SyncEnv:
    app: Any
    emulator: Any
    tid: str
    domain: str
    tenant: str = "acme"

    # --- Microsoft 365 side --------------------------------------------------------------------------------
    def add_user(self, name: str, given: str | None = "", surname: str | None = "", **extra: Any) -> dict:
        return self.emulator.add_user(self.tid, **user_fixture(self.domain, name, given, surname, **extra))

    def entra_users(self) -> list[dict]:
        return self.emulator.users(self.tid)

    def oid(self, name: str) -> str:
        return next(u["id"] for u in self.entra_users() if u["userPrincipalName"].split("@")[0] == name)

    # --- settings and runs ---------------------------------------------------------------------------------
    def settings(self, **user_sync: Any) -> None:
        from flask_pbx365.settings import import_settings

        with self.app.app_context():
            import_settings(self.tenant, {"user_sync": user_sync})

    def request(self, dry_run: bool = False) -> dict:
        from flask_pbx365.runs import request_run, status_json

        with self.app.app_context():
            return status_json(request_run(self.tenant, "users", dry_run=dry_run))

    def work(self) -> None:
        from flask_pbx365.runs.queue import make_worker

        make_worker(self.app).work(burst=True)

    def status(self, run_id: str) -> dict:
        from flask_pbx365.runs import get_run, status_json

        with self.app.app_context():
            return status_json(get_run(self.tenant, run_id))

    def sync(self, dry_run: bool = False) -> dict:
        """Request a run, let a worker execute it, return the run's JSON."""
        run = self.request(dry_run=dry_run)
        self.work()
        return self.status(run["run_id"])

    def items(self, run_id: str, action: str | None = None) -> list[dict]:
        from flask_pbx365.runs import run_items

        with self.app.app_context():
            rows, _ = run_items(run_id, action=action, limit=100000)
            return [r.as_json() for r in rows]

    # --- PBX side, as API clients see it ---------------------------------------------------------------------
    def pbx_users(self) -> list[dict]:
        token = self.app.config["DEMO_API_TOKEN"]
        answer = self.app.test_client().get(f"/api/tenants/{self.tenant}/users",
                                            headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return answer.get_json()

    def synced(self) -> dict[str, dict]:
        """PBX users linked to Entra, by email local part."""
        return {u["email"].split("@")[0]: u for u in self.pbx_users() if u["m365_object_id"]}

    def create_pbx_user(self, username: str, email: str | None = None, extension: str | None = None,
                        first_name: str = "Local", last_name: str = "User") -> dict:
        token = self.app.config["DEMO_API_TOKEN"]
        body = {"username": username, "password": "secret-pass", "role": "user", "first_name": first_name,
                "last_name": last_name, "email": email}
        if extension:
            body["extension"] = extension
        answer = self.app.test_client().post(f"/api/tenants/{self.tenant}/users", json=body,
                                             headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 201, answer.get_data(as_text=True)
        return answer.get_json()


def connect(app, emulator, tid: str, tenant: str = "acme", permissions: list[str] | None = None) -> str:
    """Connect ``tenant`` to the emulator tenant ``tid`` as an admin would; returns the app id."""
    from flask_pbx365.keys import active_key_pair, certificate_pem, generate_key_pair
    from flask_pbx365.settings import import_settings

    with app.app_context():
        info = active_key_pair(tenant) or generate_key_pair(tenant)
        cert = certificate_pem(tenant, info.sha256).decode()
    app_id = emulator.add_application(tid, displayName="Demo PBX", redirectUris=[], certificates=[cert],
                                      permissions=PERMISSIONS if permissions is None else permissions,
                                      adminConsent=True)
    with app.app_context():
        import_settings(tenant, {"configure": {
            "client_id": app_id, "directory_id": tid, "cloud": "custom", "login_url": emulator.base_url,
            "graph_url": emulator.base_url, "ca_bundle": emulator.ca_path}})
    return app_id


@pytest.fixture
def empty_env(app, m365_emulator, redis_conn) -> SyncEnv:
    """``acme`` connected to a new emulator tenant with no users."""
    tid = str(uuid.uuid4())
    domain = f"{tid[:8]}.sync.example"
    m365_emulator.create_tenant({"tenant": {"id": tid, "displayName": "Fabrikam", "domains": [domain],
                                            "cloud": "global"}, "users": [], "groups": []})
    app.config.update(PBX365_MAX_RETRIES=1, PBX365_MAX_BACKOFF=0.05, PBX365_HTTP_TIMEOUT=10)
    connect(app, m365_emulator, tid)
    m365_emulator.clear_faults()
    yield SyncEnv(app, m365_emulator, tid, domain)
    m365_emulator.clear_faults()


@pytest.fixture
def env(app, m365_emulator, m365_tenant, redis_conn) -> SyncEnv:
    """``acme`` connected to the emulator's default tenant (admin, alice, bob, carol; dave disabled; a guest)."""
    app.config.update(PBX365_MAX_RETRIES=1, PBX365_MAX_BACKOFF=0.05, PBX365_HTTP_TIMEOUT=10)
    connect(app, m365_emulator, m365_tenant)
    domain = m365_emulator.users(m365_tenant)[0]["userPrincipalName"].split("@")[1]
    m365_emulator.clear_faults()
    yield SyncEnv(app, m365_emulator, m365_tenant, domain)
    m365_emulator.clear_faults()
