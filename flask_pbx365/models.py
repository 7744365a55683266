"""The extension's tables, all prefixed ``pbx365_``.

They live on their own :class:`~sqlalchemy.MetaData` (so the host's ``db.create_all()`` and the host's Alembic
autogenerate never see them) but are read and written through the host's Flask-SQLAlchemy ``db.session`` and engine.
Their schema is created by the extension's own migrations (``migrations/``, version table
``pbx365_alembic_version``).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.TypeDecorator):
    """A timestamp stored as naive UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class TenantConfig(Base):
    """One PBX tenant's Microsoft 365 connection (the Configure tab) and the options of the other tabs."""

    __tablename__ = "pbx365_tenant"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64), unique=True)
    client_id: Mapped[str | None] = mapped_column(sa.String(64))
    directory_id: Mapped[str | None] = mapped_column(sa.String(36))
    cloud: Mapped[str] = mapped_column(sa.String(16), default="global")
    login_url: Mapped[str | None] = mapped_column(sa.String(255))
    graph_url: Mapped[str | None] = mapped_column(sa.String(255))
    ca_bundle: Mapped[str | None] = mapped_column(sa.String(1024))
    #: Every tab but Configure, as in ``settings export`` (defaults filled in on read).
    options: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    #: Role (``portal``/``sbc``) -> the redirect URI that last completed an OAuth round trip, to warn when the
    #: portal or SBC domain changes.
    verified_redirect_uris: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    consent_granted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def clip(value: object, limit: int = 255) -> str | None:
    """A Graph value for a ``String(limit)`` column: Microsoft 365 may hold longer (or non-string) values."""
    if not isinstance(value, str) or not value:
        return None
    return value if len(value) <= limit else value[:limit - 1] + "…"


class KeyPair(Base):
    """A key pair whose certificate the admin uploads to Entra. At most one per tenant is active."""

    __tablename__ = "pbx365_key_pair"
    __table_args__ = (sa.UniqueConstraint("tenant", "sha256", name="uq_pbx365_key_pair_tenant_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64), index=True)
    sha1: Mapped[str] = mapped_column(sa.String(40))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    certificate_pem: Mapped[str] = mapped_column(sa.Text)
    #: The PKCS#8 private key, AES-256-GCM encrypted (see :mod:`flask_pbx365.crypto`).
    private_key_encrypted: Mapped[bytes] = mapped_column(sa.LargeBinary)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(default=False)
    #: Days-before-expiry warnings already mailed (e.g. ``[30]``), so each goes out once.
    expiry_notices: Mapped[list] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SyncRun(Base):
    """One run of a sync (users, contacts, presence): its state, counts and progress."""

    __tablename__ = "pbx365_sync_run"
    __table_args__ = (sa.Index("ix_pbx365_sync_run_tenant_created", "tenant", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    tenant: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(24), default="queued")
    dry_run: Mapped[bool] = mapped_column(default=False)
    trigger: Mapped[str] = mapped_column(sa.String(16), default="manual")
    counts: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    progress: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    message: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    COUNT_NAMES = ("created", "updated", "linked", "disabled", "deleted", "skipped", "errors")

    def as_json(self) -> dict:
        """The ``sync ... --json`` shape of interfaces.md."""
        counts = {name: int((self.counts or {}).get(name, 0)) for name in self.COUNT_NAMES}
        return {"run_id": self.id, "kind": self.kind, "status": self.status, "counts": counts,
                "message": self.message or ""}


class UserLink(Base):
    """The link between a PBX user and the Entra user it was synced from.

    Sign-in matches on (``directory_id``, ``object_id``), Entra's immutable ``tid`` + ``oid``; never on email or UPN.
    ``state`` is what sync last did to the PBX user: ``active``, ``disabled`` (since ``disabled_at``) or ``deleted``.
    """

    __tablename__ = "pbx365_user_link"
    __table_args__ = (
        sa.UniqueConstraint("tenant", "directory_id", "object_id", name="uq_pbx365_user_link_object"),
        sa.UniqueConstraint("tenant", "host_user_id", name="uq_pbx365_user_link_host_user"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64))
    directory_id: Mapped[str] = mapped_column(sa.String(36))
    object_id: Mapped[str] = mapped_column(sa.String(36))
    host_user_id: Mapped[str] = mapped_column(sa.String(64))
    user_principal_name: Mapped[str | None] = mapped_column(sa.String(255))
    display_name: Mapped[str | None] = mapped_column(sa.String(255))
    state: Mapped[str] = mapped_column(sa.String(16), default="active")
    reason: Mapped[str | None] = mapped_column(sa.String(255))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Hash of the mapped Graph fields last applied, so unchanged users are not rewritten.
    fields_hash: Mapped[str | None] = mapped_column(sa.String(64))
    photo_etag: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeltaState(Base):
    """Where the last complete round of a sync kind left off for a tenant.

    ``options_hash`` is a hash of the filters and mapped fields the round ran with: when it differs from the
    current settings, the stored ``delta_link`` is not used and the next run is a full resync. ``scope_hash``
    is a hash of the selected groups' transitive members (group membership changes are not in users delta).
    ``applied`` keeps the settings the round applied (e.g. the extension group), to undo them after a change.
    """

    __tablename__ = "pbx365_delta_state"
    __table_args__ = (sa.UniqueConstraint("tenant", "kind", name="uq_pbx365_delta_state_tenant_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(16))
    directory_id: Mapped[str | None] = mapped_column(sa.String(36))
    delta_link: Mapped[str | None] = mapped_column(sa.Text)
    options_hash: Mapped[str | None] = mapped_column(sa.String(64))
    scope_hash: Mapped[str | None] = mapped_column(sa.String(64))
    applied: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    full_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SyncRunItem(Base):
    """What a run did (or, for a dry run or a held run, would do) to one user, with the reason."""

    __tablename__ = "pbx365_sync_run_item"
    __table_args__ = (sa.Index("ix_pbx365_sync_run_item_run_action", "run_id", "action"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(sa.String(36))
    #: created, updated, linked, disabled, deleted, skipped or error.
    action: Mapped[str] = mapped_column(sa.String(16))
    object_id: Mapped[str | None] = mapped_column(sa.String(36))
    user_principal_name: Mapped[str | None] = mapped_column(sa.String(255))
    display_name: Mapped[str | None] = mapped_column(sa.String(255))
    extension: Mapped[str | None] = mapped_column(sa.String(32))
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def as_json(self) -> dict:
        return {"action": self.action, "object_id": self.object_id, "user_principal_name": self.user_principal_name,
                "display_name": self.display_name, "extension": self.extension, "detail": self.detail}


class ContactFolderState(Base):
    """Contacts sync: where one contact folder of one mailbox stood after the last applied run.

    ``mailbox`` is the Entra object id (personal contacts, then ``host_user_id`` is the PBX user whose phonebook
    gets them) or the shared mailbox's address (company phonebook). ``delta_link`` is the folder's contacts
    deltaLink (None where the cloud has no contact delta); ``contact_ids`` the ids in the folder then, so a
    contact leaving the mailbox (or a deleted folder) is removed from the phonebook.
    """

    __tablename__ = "pbx365_contact_folder_state"
    __table_args__ = (sa.UniqueConstraint("tenant", "mailbox", "folder_id",
                                          name="uq_pbx365_contact_folder_state_folder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64))
    mailbox: Mapped[str] = mapped_column(sa.String(255))
    host_user_id: Mapped[str | None] = mapped_column(sa.String(64))
    folder_id: Mapped[str] = mapped_column(sa.String(255))
    delta_link: Mapped[str | None] = mapped_column(sa.Text)
    contact_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PresenceState(Base):
    """What calendar presence remembers about one PBX user between runs.

    While a meeting drives the user's status, ``applied_status`` is the status it set (from ``event_id``, ending
    ``event_end``) and ``previous_status``/``previous_source`` what to restore when the meeting ends.
    ``ignored_event_ids`` are meetings in progress during which the user (or an admin) changed the status: that
    choice wins until the next meeting. A row exists only while there is something to remember.
    """

    __tablename__ = "pbx365_presence_state"
    __table_args__ = (sa.UniqueConstraint("tenant", "host_user_id", name="uq_pbx365_presence_state_host_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64))
    host_user_id: Mapped[str] = mapped_column(sa.String(64))
    object_id: Mapped[str] = mapped_column(sa.String(36))
    applied_status: Mapped[str | None] = mapped_column(sa.String(16))
    event_id: Mapped[str | None] = mapped_column(sa.Text)
    event_subject: Mapped[str | None] = mapped_column(sa.String(255))
    event_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    previous_status: Mapped[str | None] = mapped_column(sa.String(16))
    previous_source: Mapped[str | None] = mapped_column(sa.String(16))
    ignored_event_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class TeamsPresenceState(Base):
    """What Teams presence remembers about one PBX user, both ways.

    Teams → PBX: ``availability``/``activity`` last read from Teams (a poll acts on a change only);
    ``applied_status`` the PBX status a Teams change set, ``previous_status``/``previous_source`` what to give back
    when Teams no longer says anything that maps. PBX → Teams: ``call_state`` as the host last reported it, and
    ``session_expires_at`` when the application presence session set for it ends (null: no session).
    """

    __tablename__ = "pbx365_teams_presence"
    __table_args__ = (sa.UniqueConstraint("tenant", "host_user_id", name="uq_pbx365_teams_presence_host_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64))
    host_user_id: Mapped[str] = mapped_column(sa.String(64))
    object_id: Mapped[str] = mapped_column(sa.String(36))
    availability: Mapped[str | None] = mapped_column(sa.String(32))
    activity: Mapped[str | None] = mapped_column(sa.String(64))
    applied_status: Mapped[str | None] = mapped_column(sa.String(16))
    previous_status: Mapped[str | None] = mapped_column(sa.String(16))
    previous_source: Mapped[str | None] = mapped_column(sa.String(16))
    call_state: Mapped[str] = mapped_column(sa.String(16), default="idle")
    call_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    session_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    push_error: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class MailOutboxMessage(Base):
    """An email queued for Microsoft 365 (Graph ``sendMail``): the mail job reads it by id, so a worker restart
    loses nothing. ``status``: queued, sending, sent or failed (``error`` says why); a message left ``queued``
    without a job, or ``sending`` by a dead worker, is picked up again by the scheduler
    (:mod:`flask_pbx365.mail.recovery`). ``on_result`` is the host's top-level callback (``module:function``) told
    how it ended, with the host's ``reference``."""

    __tablename__ = "pbx365_mail_message"
    __table_args__ = (sa.Index("ix_pbx365_mail_message_tenant_created", "tenant", "created_at"),
                      sa.Index("ix_pbx365_mail_message_status_at", "status", "status_at"))

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    tenant: Mapped[str] = mapped_column(sa.String(64))
    sender: Mapped[str] = mapped_column(sa.String(320))
    recipients: Mapped[list] = mapped_column(sa.JSON, default=list)
    subject: Mapped[str] = mapped_column(sa.Text, default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    body_type: Mapped[str] = mapped_column(sa.String(8), default="text")
    save_to_sent_items: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    on_result: Mapped[str | None] = mapped_column(sa.String(255))
    reference: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: When the message entered its ``status``: how the scheduler tells a lost job or a dead worker's message.
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MailOutboxAttachment(Base):
    """A file of a queued email. ``data`` is dropped once the message is sent; name, size and hash stay."""

    __tablename__ = "pbx365_mail_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("pbx365_mail_message.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    name: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(255))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    data: Mapped[bytes | None] = mapped_column(sa.LargeBinary)


class NotificationSubscription(Base):
    """A Graph change-notification subscription the extension created for a tenant (:mod:`flask_pbx365.notifications`).

    ``id`` is Graph's subscription id; ``kind`` is the run it triggers (users, contacts, presence). Only a SHA-256 of
    the random ``clientState`` is kept: enough to check incoming notifications, useless to forge them.
    """

    __tablename__ = "pbx365_subscription"
    __table_args__ = (sa.Index("ix_pbx365_subscription_tenant", "tenant"),)

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(16))
    resource: Mapped[str] = mapped_column(sa.String(512))
    notification_url: Mapped[str] = mapped_column(sa.String(1024))
    client_state_hash: Mapped[str] = mapped_column(sa.String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
