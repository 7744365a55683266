"""A deliberately small PBX kept in dicts: the second host the conformance kit runs against.

It shares nothing with demo_app (no SQL tables of its own, sessions in Flask's cookie), so a kit that passes here
does not assume the demo. ``pytest --pbx365-host tests.hosts.memory_host:make_harness``.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
from dataclasses import replace

from flask import Flask, redirect, session
from flask_sqlalchemy import SQLAlchemy

from flask_pbx365 import PBX365
from flask_pbx365.conformance import HostHarness
from flask_pbx365.exceptions import ExtensionInUseError, HostAdapterError
from flask_pbx365.host import HostTenant, HostUser, PhonebookEntry, PublicURLs

TENANTS = {"north": "North Ltd", "south": "South Ltd"}


class MemoryHost:
    """Users, groups, phonebooks and presence in dicts; user ids are ``u1``, ``u2``..."""

    def __init__(self) -> None:
        self.users: dict[str, HostUser] = {}
        self.presence: dict[str, tuple[str, str]] = {}
        self.books: dict[tuple, dict[str, PhonebookEntry]] = {}
        self.own_entries: dict[str, list[str]] = {}  # entries users typed in themselves, kept apart
        self.groups: set[tuple[str, str]] = set()
        self.mail: list = []
        self._ids = itertools.count(1)

    def list_tenants(self): return [HostTenant(k, v) for k, v in TENANTS.items()]
    def current_tenant(self): return session.get("tenant")
    def is_tenant_admin(self, tenant): return session.get("admin") is True and session.get("tenant") == tenant
    def login_url(self, next_path): return "/signin?" + __import__("urllib.parse").parse.urlencode({"next": next_path})

    def _user(self, tenant, user_id) -> HostUser:
        user = self.users.get(user_id)
        if user is None or user.tenant != tenant:
            raise HostAdapterError(f"{tenant} has no user {user_id}")
        return user

    def list_users(self, tenant): return [replace(u) for u in self.users.values() if u.tenant == tenant]

    def get_user(self, tenant, user_id):
        user = self.users.get(user_id)
        return replace(user, groups=list(user.groups)) if user and user.tenant == tenant else None

    def create_user(self, tenant, username, extension, fields):
        if not self.is_extension_free(tenant, extension):
            raise ExtensionInUseError(extension)
        taken = {u.username for u in self.users.values()}
        name = username
        for n in itertools.count(2):
            if name not in taken:
                break
            name = f"{username}.{n}"
        user = HostUser(id=f"u{next(self._ids)}", tenant=tenant, username=name, extension=extension)
        self.users[user.id] = user
        self.presence[user.id] = ("available", "user")
        return self.update_user(tenant, user.id, fields)

    def update_user(self, tenant, user_id, fields):
        user = self._user(tenant, user_id)
        for key, value in vars(fields).items():
            if value is not None:
                setattr(user, key, value)
        return replace(user)

    def set_user_enabled(self, tenant, user_id, enabled): self._user(tenant, user_id).enabled = enabled

    def delete_user(self, tenant, user_id):
        self._user(tenant, user_id)
        del self.users[user_id]

    def is_extension_free(self, tenant, extension):
        return all(u.extension != extension for u in self.users.values() if u.tenant == tenant)

    def ensure_group(self, tenant, name): self.groups.add((tenant, name))

    def set_group_membership(self, tenant, name, user_id, member):
        user = self._user(tenant, user_id)
        if member and name not in user.groups:
            user.groups.append(name)
        elif not member and name in user.groups:
            user.groups.remove(name)

    def set_photo(self, tenant, user_id, data, content_type=None):
        self._user(tenant, user_id).photo_sha256 = hashlib.sha256(data).hexdigest() if data else None

    def set_caller_id(self, tenant, user_id, number): self._user(tenant, user_id).caller_id = number

    def _book(self, *key): return self.books.setdefault(key, {})

    def list_personal_contacts(self, tenant, user_id, source):
        self._user(tenant, user_id)
        return list(self._book(user_id, source).values())

    def upsert_personal_contact(self, tenant, user_id, entry):
        self._user(tenant, user_id)
        self._book(user_id, entry.source)[entry.key] = entry

    def delete_personal_contact(self, tenant, user_id, source, key): self._book(user_id, source).pop(key, None)
    def list_company_contacts(self, tenant, source): return list(self._book(tenant, source).values())
    def upsert_company_contact(self, tenant, entry): self._book(tenant, entry.source)[entry.key] = entry
    def delete_company_contact(self, tenant, source, key): self._book(tenant, source).pop(key, None)

    def get_presence(self, tenant, user_id):
        self._user(tenant, user_id)
        return self.presence[user_id]

    def set_presence(self, tenant, user_id, status, source):
        self._user(tenant, user_id)
        self.presence[user_id] = (status, source)

    def login_user(self, tenant, user_id, target):
        user = self._user(tenant, user_id)
        session.clear()
        session.update(tenant=tenant, user=user_id, admin=target == "admin" and user.is_admin)
        return redirect("/")

    def issue_app_token(self, tenant, user_id): return {"token": f"memory-{user_id}"}

    def public_urls(self, tenant):
        return PublicURLs(portal=f"https://{tenant}.pbx.example", sbc=f"https://sbc.{tenant}.pbx.example:8444")

    def admin_emails(self, tenant): return [f"admin@{tenant}.pbx.example"]
    def send_mail(self, tenant, message): self.mail.append(message)


def make_harness(host: MemoryHost | None = None):
    """The harness; ``host`` lets a test hand in a (deliberately broken) subclass."""
    host = host or MemoryHost()
    folder = tempfile.mkdtemp(prefix="pbx365-kit-memory-")
    app = Flask(__name__)
    app.config.update(SECRET_KEY="memory", PBX365_SECRET_KEY="memory-secret",
                      SQLALCHEMY_DATABASE_URI=f"sqlite:///{folder}/pbx365.db",
                      PBX365_REDIS_URL=os.environ.get("KIT_REDIS_URL", "redis://127.0.0.1:9/0"))
    db = SQLAlchemy(app)
    PBX365(app, db=db, host=host)
    result = app.test_cli_runner().invoke(args=["pbx365", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    admin = HostUser(id="admin", tenant="north", username="boss@north", extension="100", is_admin=True)
    host.users[admin.id] = admin
    host.presence[admin.id] = ("available", "user")
    return HostHarness(app=app, tenant="north", other_tenant="south", transactional=False,
                       sent_mail=lambda: host.mail,
                       add_user_contact=lambda t, uid, name: host.own_entries.setdefault(uid, []).append(name),
                       user_contact_names=lambda t, uid: host.own_entries.get(uid, []))
