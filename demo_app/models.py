"""The demo PBX's own tables (never prefixed ``pbx365_``: those belong to the extension).

``db`` is the one Flask-SQLAlchemy object of the demo; the extension reads and writes its own tables through the
same session and engine.
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from flask import current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Marks a password hash no password matches (users created by the extension sign in with Microsoft).
UNUSABLE_PASSWORD = "!"


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class PasswordMixin:
    password_hash: Mapped[str]

    def set_password(self, password: str | None) -> None:
        """Store a hash of ``password``; ``None`` makes the password unusable."""
        if password is None:
            self.password_hash = UNUSABLE_PASSWORD
        else:
            method = current_app.config.get("DEMO_PASSWORD_METHOD", "scrypt")
            self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        if not self.password_hash or self.password_hash.startswith(UNUSABLE_PASSWORD):
            return False
        return check_password_hash(self.password_hash, password)


class Tenant(db.Model):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def as_json(self) -> dict:
        return {"slug": self.slug, "name": self.name}


class SystemAdmin(PasswordMixin, db.Model):
    __tablename__ = "system_admins"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(120), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))


class User(PasswordMixin, db.Model):
    """A PBX user (an extension). ``username`` is ``name@tenant``, unique across the portal."""

    __tablename__ = "users"
    # The unique constraint is what makes concurrent extension allocation fail loudly instead of duplicating.
    __table_args__ = (sa.UniqueConstraint("tenant_id", "extension", name="uq_users_tenant_extension"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(sa.String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16), default="user")
    extension: Mapped[str] = mapped_column(sa.String(32))
    first_name: Mapped[str] = mapped_column(sa.String(120), default="")
    last_name: Mapped[str] = mapped_column(sa.String(120), default="")
    display_name: Mapped[str] = mapped_column(sa.String(255), default="")
    email: Mapped[str | None] = mapped_column(sa.String(255))
    mobile: Mapped[str | None] = mapped_column(sa.String(64))
    department: Mapped[str | None] = mapped_column(sa.String(255))
    job_title: Mapped[str | None] = mapped_column(sa.String(255))
    caller_id: Mapped[str | None] = mapped_column(sa.String(64))
    enabled: Mapped[bool] = mapped_column(default=True)
    photo: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    photo_content_type: Mapped[str | None] = mapped_column(sa.String(100))
    photo_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    presence_status: Mapped[str] = mapped_column(sa.String(32), default="available")
    presence_source: Mapped[str] = mapped_column(sa.String(16), default="user")
    call_state: Mapped[str] = mapped_column(sa.String(16), default="idle", server_default="idle")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tenant: Mapped[Tenant] = relationship(lazy="joined")
    groups: Mapped[list[ExtensionGroup]] = relationship(secondary="extension_group_members",
                                                         back_populates="members", order_by="ExtensionGroup.name")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def name(self) -> str:
        return self.display_name or f"{self.first_name} {self.last_name}".strip() or self.username


class ExtensionGroup(db.Model):
    __tablename__ = "extension_groups"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "name", name="uq_extension_groups_tenant_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))

    members: Mapped[list[User]] = relationship(secondary="extension_group_members", back_populates="groups",
                                               order_by="User.extension")


extension_group_members = sa.Table(
    "extension_group_members",
    db.metadata,
    sa.Column("group_id", sa.ForeignKey("extension_groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


class ContactMixin:
    """A phonebook entry: ``key`` is stable per ``source`` so a sync updates instead of duplicating."""

    key: Mapped[str] = mapped_column(sa.String(255))
    source: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str] = mapped_column(sa.String(255))
    company: Mapped[str] = mapped_column(sa.String(255), default="")
    phones: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    emails: Mapped[list] = mapped_column(sa.JSON, default=list)

    def as_json(self) -> dict:
        phones = {kind: list((self.phones or {}).get(kind, [])) for kind in ("business", "mobile", "home")}
        return {"name": self.name, "company": self.company or "", "phones": phones,
                "emails": list(self.emails or []), "source": self.source}


class PersonalContact(ContactMixin, db.Model):
    __tablename__ = "personal_contacts"
    __table_args__ = (sa.UniqueConstraint("user_id", "source", "key", name="uq_personal_contacts_user_source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)


class CompanyContact(ContactMixin, db.Model):
    __tablename__ = "company_contacts"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "source", "key", name="uq_company_contacts_tenant_source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


class Voicemail(db.Model):
    __tablename__ = "voicemails"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    caller: Mapped[str] = mapped_column(sa.String(64), default="")
    content_type: Mapped[str] = mapped_column(sa.String(64), default="audio/wav")
    size: Mapped[int] = mapped_column(default=0)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def filename(self) -> str:
        return f"voicemail-{self.id}.wav"


class Notification(db.Model):
    """An email the portal sent (or tried to), whatever the transport."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    recipients: Mapped[list] = mapped_column(sa.JSON, default=list)
    subject: Mapped[str] = mapped_column(sa.String(998), default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    body_type: Mapped[str] = mapped_column(sa.String(8), default="text")
    transport: Mapped[str] = mapped_column(sa.String(16), default="log")
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    error: Mapped[str | None] = mapped_column(sa.Text)
    attachments: Mapped[list] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def as_json(self) -> dict:
        return {"id": self.id, "to": list(self.recipients or []), "subject": self.subject, "transport": self.transport,
                "status": self.status, "error": self.error, "attachments": list(self.attachments or []),
                "created_at": self.created_at.isoformat() + "Z"}


class AppToken(db.Model):
    """A session token of the mobile/desktop app; only its SHA-256 is stored."""

    __tablename__ = "app_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
