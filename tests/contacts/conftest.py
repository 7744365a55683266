"""Contacts sync rig: ``acme`` connected to a fresh emulator tenant whose users were linked by a real user sync.

Mailbox data is changed through the emulator's admin API (as people would in Outlook); results are read as
clients see them: the demo JSON API (personal and company phonebooks), the run JSON, the CLI and the tab.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.sync.conftest import SyncEnv, connect, user_fixture

PERMISSIONS = ["User.Read.All", "Contacts.Read", "MailboxSettings.Read"]


@dataclass
class ContactsEnv(SyncEnv):
    ids: dict[str, str] = field(default_factory=dict)

    # --- Microsoft 365 side --------------------------------------------------------------------------------
    def mailbox(self, who: str) -> str:
        return f"/tenants/{self.tid}/users/{self.ids.get(who, who)}"

    def add_contact(self, who: str, name: str, folder: str | None = None, **props: Any) -> str:
        given, _, surname = name.partition(" ")
        body = {"givenName": given, "surname": surname or None, "displayName": name, **props}
        if folder:
            body["parentFolderId"] = folder
        return self.emulator.admin("POST", f"{self.mailbox(who)}/contacts", body)["id"]

    def patch_contact(self, who: str, cid: str, **props: Any) -> None:
        self.emulator.admin("PATCH", f"{self.mailbox(who)}/contacts/{cid}", props)

    def delete_contact(self, who: str, cid: str) -> None:
        self.emulator.admin("DELETE", f"{self.mailbox(who)}/contacts/{cid}")

    def add_folder(self, who: str, name: str, parent: str | None = None) -> str:
        body = {"displayName": name, **({"parentFolderId": parent} if parent else {})}
        return self.emulator.admin("POST", f"{self.mailbox(who)}/contactFolders", body)["id"]

    def delete_folder(self, who: str, fid: str) -> None:
        self.emulator.admin("DELETE", f"{self.mailbox(who)}/contactFolders/{fid}")

    # --- settings and runs ---------------------------------------------------------------------------------
    def contacts_settings(self, **options: Any) -> None:
        from flask_pbx365.settings import import_settings

        with self.app.app_context():
            import_settings(self.tenant, {"contacts": options})

    def sync_contacts(self, dry_run: bool = False) -> dict:
        from flask_pbx365.runs import request_run, status_json

        with self.app.app_context():
            run = status_json(request_run(self.tenant, "contacts", dry_run=dry_run))
        self.work()
        return self.status(run["run_id"])

    # --- PBX side, as API clients see it -------------------------------------------------------------------
    def api(self, path: str, method: str = "GET", json: Any = None) -> Any:
        token = self.app.config["DEMO_API_TOKEN"]
        answer = self.app.test_client().open(f"/api/tenants/{self.tenant}{path}", method=method, json=json,
                                              headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code in (200, 201), answer.get_data(as_text=True)
        return answer.get_json()

    def extension(self, who: str) -> str:
        return self.synced()[who]["extension"]

    def personal(self, who: str) -> dict[str, dict]:
        """``who``'s personal phonebook by entry name."""
        return {c["name"]: c for c in self.api(f"/users/{self.extension(who)}/contacts")}

    def company(self) -> dict[str, dict]:
        return {c["name"]: c for c in self.api("/contacts")}


def _tenant(emulator, cloud: str) -> tuple[str, str, dict[str, str]]:
    tid = str(uuid.uuid4())
    domain = f"{tid[:8]}.contacts.example"
    users = [user_fixture(domain, "alice", "Alice", "Anders"), user_fixture(domain, "bob", "Bob", "Brown"),
             user_fixture(domain, "carol", "Carol", "Clark"),
             user_fixture(domain, "reception", "Reception", None, accountEnabled=False,
                          mailboxSettings={"userPurpose": "shared"})]
    emulator.create_tenant({"tenant": {"id": tid, "displayName": "Northwind", "domains": [domain], "cloud": cloud},
                            "users": users, "groups": []})
    return tid, domain, {u["userPrincipalName"].split("@")[0]: u["id"] for u in users}


def make_env(app, emulator, cloud: str = "global", permissions: list[str] | None = None) -> ContactsEnv:
    tid, domain, ids = _tenant(emulator, cloud)
    app.config.update(PBX365_MAX_RETRIES=1, PBX365_MAX_BACKOFF=0.05, PBX365_HTTP_TIMEOUT=10)
    connect(app, emulator, tid, permissions=PERMISSIONS if permissions is None else permissions)
    env = ContactsEnv(app, emulator, tid, domain, ids=ids)
    env.settings(users=[ids["alice"], ids["bob"]])
    assert env.sync()["status"] == "done"   # alice and bob become linked PBX users
    return env


@pytest.fixture
def cenv(app, m365_emulator, redis_conn) -> ContactsEnv:
    """``acme`` with alice and bob synced from a fresh tenant (carol unsynced, ``reception`` a shared mailbox)."""
    m365_emulator.clear_faults()
    yield make_env(app, m365_emulator)
    m365_emulator.clear_faults()
