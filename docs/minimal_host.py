"""A minimal PBX portal that mounts flask_pbx365: one tenant, users in SQLite, everything else kept simple.

Run it with ``flask --app minimal_host pbx365 db upgrade`` then ``flask --app minimal_host run``. The wheel smoke
test (tests/wheel) installs the built wheel into a fresh venv and drives this very file, so it stays true.
"""
from __future__ import annotations

import os

from flask import Flask, redirect, session
from flask_sqlalchemy import SQLAlchemy

from flask_pbx365 import PBX365
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
    presence = db.Column(db.String(20), default="available")
    presence_source = db.Column(db.String(20), default="user")
    __table_args__ = (db.UniqueConstraint("tenant", "number"),)


def _host_user(row: Extension) -> HostUser:
    return HostUser(id=str(row.id), tenant=row.tenant, username=row.username, extension=row.number,
                    first_name=row.first_name, last_name=row.last_name, display_name=row.display_name,
                    email=row.email, mobile=row.mobile, department=row.department, job_title=row.job_title,
                    caller_id=row.caller_id, enabled=row.enabled)


class MinimalHost:
    """Implements :class:`flask_pbx365.host.PBXHost` for this portal: read the method docs there."""

    def __init__(self) -> None:
        self.phonebooks: dict[tuple, dict[str, PhonebookEntry]] = {}  # kept in memory: a real PBX stores them
        self.outbox: list = []

    def list_tenants(self): return [HostTenant("acme", "Acme")]
    def current_tenant(self): return session.get("tenant")
    def is_tenant_admin(self, tenant): return session.get("admin") is True and session.get("tenant") == tenant
    def login_url(self, next_path): return f"/login?next={next_path}"

    def list_users(self, tenant):
        return [_host_user(r) for r in db.session.scalars(db.select(Extension).filter_by(tenant=tenant))]

    def get_user(self, tenant, user_id):
        row = db.session.get(Extension, int(user_id))
        return _host_user(row) if row is not None and row.tenant == tenant else None

    def create_user(self, tenant, username, extension, fields):
        row = Extension(tenant=tenant, username=username, number=extension, **_set(fields))
        db.session.add(row)
        db.session.flush()  # the extension commits with its own batch
        return _host_user(row)

    def update_user(self, tenant, user_id, fields):
        row = db.session.get(Extension, int(user_id))
        for name, value in _set(fields).items():
            setattr(row, name, value)
        return _host_user(row)

    def set_user_enabled(self, tenant, user_id, enabled): db.session.get(Extension, int(user_id)).enabled = enabled
    def delete_user(self, tenant, user_id): db.session.delete(db.session.get(Extension, int(user_id)))

    def is_extension_free(self, tenant, extension):
        return db.session.scalar(db.select(Extension.id).filter_by(tenant=tenant, number=extension)) is None

    def ensure_group(self, tenant, name): pass
    def set_group_membership(self, tenant, name, user_id, member): pass
    def set_photo(self, tenant, user_id, data, content_type=None): pass
    def set_caller_id(self, tenant, user_id, number): db.session.get(Extension, int(user_id)).caller_id = number

    def _book(self, *key): return self.phonebooks.setdefault(key, {})
    def list_personal_contacts(self, tenant, user_id, source): return list(self._book(tenant, user_id, source).values())
    def upsert_personal_contact(self, tenant, user_id, entry): self._book(tenant, user_id, entry.source)[entry.key] = entry
    def delete_personal_contact(self, tenant, user_id, source, key): self._book(tenant, user_id, source).pop(key, None)
    def list_company_contacts(self, tenant, source): return list(self._book(tenant, source).values())
    def upsert_company_contact(self, tenant, entry): self._book(tenant, entry.source)[entry.key] = entry
    def delete_company_contact(self, tenant, source, key): self._book(tenant, source).pop(key, None)

    def get_presence(self, tenant, user_id):
        row = db.session.get(Extension, int(user_id))
        return row.presence, row.presence_source

    def set_presence(self, tenant, user_id, status, source):
        row = db.session.get(Extension, int(user_id))
        row.presence, row.presence_source = status, source

    def login_user(self, tenant, user_id, target):
        session.update(tenant=tenant, user=user_id, admin=target == "admin")
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
