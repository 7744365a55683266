"""A minimal PBX portal that mounts flask_pbx365: one tenant, users in SQLite, everything else kept simple.

Run it with ``flask --app minimal_host pbx365 db upgrade`` then ``flask --app minimal_host run``; prove the adapter
with ``pytest --pbx365-host minimal_host:make_harness`` (the conformance kit). The wheel smoke test (tests/wheel)
installs the built wheel into a fresh venv and drives this very file, kit included, so it stays true.
"""
from __future__ import annotations

import os

from flask import Flask, redirect, session
from flask_sqlalchemy import SQLAlchemy

from flask_pbx365 import PBX365
from flask_pbx365.exceptions import ExtensionInUseError, HostAdapterError
from flask_pbx365.host import HostTenant, HostUser, PhonebookEntry, PublicURLs

db = SQLAlchemy()


class Extension(db.Model):  # the PBX's own table; flask_pbx365 never touches it
    id = db.Column(db.Integer, primary_key=True)
    tenant = db.Column(db.String(40), nullable=False)
    username = db.Column(db.String(200), nullable=False, unique=True)
    number = db.Column(db.String(10), nullable=False)
    first_name = db.Column(db.String(200), default="")
    last_name = db.Column(db.String(200), default="")
    display_name = db.Column(db.String(200), default="")
    email = db.Column(db.String(200))
    mobile = db.Column(db.String(40))
    department = db.Column(db.String(200))
    job_title = db.Column(db.String(200))
    caller_id = db.Column(db.String(40))
    enabled = db.Column(db.Boolean, default=True)
    is_admin = db.Column(db.Boolean, default=False)
    presence = db.Column(db.String(20), default="available")
    presence_source = db.Column(db.String(20), default="user")
    __table_args__ = (db.UniqueConstraint("tenant", "number"),)


def _host_user(row: Extension, groups: dict[str, set[str]]) -> HostUser:
    return HostUser(id=str(row.id), tenant=row.tenant, username=row.username, extension=row.number,
                    first_name=row.first_name, last_name=row.last_name, display_name=row.display_name,
                    email=row.email, mobile=row.mobile, department=row.department, job_title=row.job_title,
                    caller_id=row.caller_id, enabled=row.enabled, is_admin=row.is_admin,
                    groups=sorted(groups.get(str(row.id), ())))


class MinimalHost:
    """Implements :class:`flask_pbx365.host.PBXHost` for this portal: read the method docs there."""

    def __init__(self) -> None:
        self.phonebooks: dict[tuple, dict[str, PhonebookEntry]] = {}  # kept in memory: a real PBX stores them
        self.groups: dict[str, set[str]] = {}  # user id -> extension groups, in memory too
        self.outbox: list = []

    def list_tenants(self): return [HostTenant("acme", "Acme")]
    def current_tenant(self): return session.get("tenant")
    def is_tenant_admin(self, tenant): return session.get("admin") is True and session.get("tenant") == tenant
    def login_url(self, next_path): return f"/login?next={next_path}"

    def _row(self, tenant, user_id) -> Extension:
        """The user's row, or the HostAdapterError the extension records as that one user's error."""
        row = db.session.get(Extension, int(user_id)) if str(user_id).isdigit() else None
        if row is None or row.tenant != tenant:
            raise HostAdapterError(f"{tenant} has no user {user_id}")
        return row

    def list_users(self, tenant):
        return [_host_user(r, self.groups) for r in db.session.scalars(db.select(Extension).filter_by(tenant=tenant))]

    def get_user(self, tenant, user_id):
        try:
            return _host_user(self._row(tenant, user_id), self.groups)
        except HostAdapterError:
            return None

    def create_user(self, tenant, username, extension, fields):
        if not self.is_extension_free(tenant, extension):
            raise ExtensionInUseError(extension)
        name, n = username, 1
        while db.session.scalar(db.select(Extension.id).filter_by(username=name)) is not None:
            n += 1
            name = f"{username}.{n}"
        row = Extension(tenant=tenant, username=name, number=extension, **_set(fields))
        db.session.add(row)
        db.session.flush()  # the extension commits with its own batch
        return _host_user(row, self.groups)

    def update_user(self, tenant, user_id, fields):
        row = self._row(tenant, user_id)
        for name, value in _set(fields).items():
            setattr(row, name, value)
        return _host_user(row, self.groups)

    def set_user_enabled(self, tenant, user_id, enabled): self._row(tenant, user_id).enabled = enabled
    def delete_user(self, tenant, user_id): db.session.delete(self._row(tenant, user_id))

    def is_extension_free(self, tenant, extension):
        return db.session.scalar(db.select(Extension.id).filter_by(tenant=tenant, number=extension)) is None

    def ensure_group(self, tenant, name): pass

    def set_group_membership(self, tenant, name, user_id, member):
        self._row(tenant, user_id)
        members = self.groups.setdefault(str(user_id), set())
        members.add(name) if member else members.discard(name)

    def set_photo(self, tenant, user_id, data, content_type=None): self._row(tenant, user_id)  # no photos kept
    def set_caller_id(self, tenant, user_id, number): self._row(tenant, user_id).caller_id = number

    def _book(self, *key): return self.phonebooks.setdefault(key, {})

    def list_personal_contacts(self, tenant, user_id, source):
        self._row(tenant, user_id)
        return list(self._book(tenant, user_id, source).values())

    def upsert_personal_contact(self, tenant, user_id, entry):
        self._row(tenant, user_id)
        self._book(tenant, user_id, entry.source)[entry.key] = entry

    def delete_personal_contact(self, tenant, user_id, source, key): self._book(tenant, user_id, source).pop(key, None)
    def list_company_contacts(self, tenant, source): return list(self._book(tenant, source).values())
    def upsert_company_contact(self, tenant, entry): self._book(tenant, entry.source)[entry.key] = entry
    def delete_company_contact(self, tenant, source, key): self._book(tenant, source).pop(key, None)

    def get_presence(self, tenant, user_id):
        row = self._row(tenant, user_id)
        return row.presence, row.presence_source

    def set_presence(self, tenant, user_id, status, source):
        row = self._row(tenant, user_id)
        row.presence, row.presence_source = status, source

    def login_user(self, tenant, user_id, target):
        row = self._row(tenant, user_id)
        session.clear()
        session.update(tenant=tenant, user=user_id, admin=target == "admin" and bool(row.is_admin))
        return redirect("/")

    def issue_app_token(self, tenant, user_id): return {"token": f"app-{user_id}"}
    def public_urls(self, tenant): return PublicURLs(portal=os.environ.get("PORTAL_URL", "http://localhost:5000"))
    def admin_emails(self, tenant): return ["pbx-admin@example.com"]
    def send_mail(self, tenant, message): self.outbox.append(message)


def _set(fields) -> dict:
    """The UserFields that are not None (None leaves a field alone)."""
    return {k: v for k, v in vars(fields).items() if v is not None}


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=os.environ.get("SECRET_KEY", "change-me"),
                      SQLALCHEMY_DATABASE_URI=os.environ.get("DATABASE_URL", "sqlite:///minimal-pbx.db"),
                      PBX365_REDIS_URL=os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    db.init_app(app)
    PBX365(app, db=db, host=MinimalHost())
    with app.app_context():
        db.create_all()  # the host's own tables; `flask pbx365 db upgrade` creates the extension's

    @app.get("/login")
    def login():  # a real portal checks a password; here anyone is the admin of acme
        session.update(tenant="acme", admin=True)
        return redirect("/admin/integrations/microsoft365/")

    return app


def make_harness():
    """The conformance kit's view of this portal (``pytest --pbx365-host minimal_host:make_harness``)."""
    from flask_pbx365.conformance import HostHarness  # pytest's world: the portal itself never needs it

    app = create_app()
    with app.app_context():
        admin = db.session.scalar(db.select(Extension).filter_by(tenant="acme", is_admin=True))
        if admin is None:
            admin = Extension(tenant="acme", username="admin@acme", number="10", is_admin=True)
            db.session.add(admin)
            db.session.commit()
        admin_id = str(admin.id)
    host = app.extensions["pbx365"].host
    return HostHarness(app=app, tenant="acme", admin_user_id=admin_id, sent_mail=lambda: host.outbox)
