"""The host adapter: the one door between flask_pbx365 and the PBX that mounts it.

The extension never reads or writes the host's tables. Everything it needs from the PBX goes through an object
implementing :class:`PBXHost`, passed as ``PBX365(app, db=db, host=MyHost())`` — the same pattern as
Flask-Dance's storage backends. ``demo_app.host.DemoHost`` is the reference implementation.

Tenants are identified by the host's tenant key (a slug such as ``"acme"``); users by the host's own user id,
as a string. Extensions are strings. Presence statuses are the values of :data:`PRESENCE_STATUSES`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from flask import Response

PRESENCE_STATUSES = ("available", "away", "dnd", "lunch", "business_trip", "holiday")
PresenceStatus = Literal["available", "away", "dnd", "lunch", "business_trip", "holiday"]
PresenceSource = Literal["user", "calendar", "admin"]
SignInTarget = Literal["admin", "web", "app"]


@dataclass(frozen=True)
class HostTenant:
    """A PBX tenant."""

    key: str
    name: str


@dataclass
class HostUser:
    """A PBX user as the host reports it."""

    id: str
    tenant: str
    username: str
    extension: str
    first_name: str = ""
    last_name: str = ""
    display_name: str = ""
    email: str | None = None
    mobile: str | None = None
    department: str | None = None
    job_title: str | None = None
    caller_id: str | None = None
    enabled: bool = True
    is_admin: bool = False
    groups: list[str] = field(default_factory=list)
    photo_sha256: str | None = None


@dataclass
class UserFields:
    """The profile fields user sync writes. ``None`` leaves a field alone on update."""

    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    email: str | None = None
    mobile: str | None = None
    department: str | None = None
    job_title: str | None = None


@dataclass
class PhonebookEntry:
    """One phonebook contact. ``key`` is stable per ``source`` (the Graph contact id), so updates replace."""

    key: str
    source: str
    name: str
    company: str = ""
    phones: dict[str, list[str]] = field(default_factory=lambda: {"business": [], "mobile": [], "home": []})
    emails: list[str] = field(default_factory=list)


@dataclass
class MailAttachment:
    name: str
    content_type: str
    data: bytes


@dataclass
class MailMessage:
    """An email the PBX or the extension wants to send."""

    to: list[str]
    subject: str
    body: str
    body_type: Literal["text", "html"] = "text"
    attachments: list[MailAttachment] = field(default_factory=list)


@dataclass(frozen=True)
class PublicURLs:
    """The tenant's public base URLs: the portal domain, and the SBC domain when an SBC fronts the portal."""

    portal: str
    sbc: str | None = None


@runtime_checkable
class PBXHost(Protocol):
    """What the host PBX implements for flask_pbx365. Every method is called inside an app context."""

    # --- tenancy and access -------------------------------------------------------------------------------
    def list_tenants(self) -> list[HostTenant]:
        """Every tenant of the PBX."""

    def current_tenant(self) -> str | None:
        """The tenant the current request is scoped to: the tenant admin's own, or the one a system admin
        switched into. ``None`` when there is no scope (not signed in, or a system admin with no tenant)."""

    def is_tenant_admin(self, tenant: str) -> bool:
        """True when the current request's user may administer ``tenant``."""

    def login_url(self, next_path: str) -> str:
        """Where to send an unauthenticated admin; ``next_path`` is a local path to come back to."""

    # --- users and extensions -----------------------------------------------------------------------------
    def list_users(self, tenant: str) -> list[HostUser]:
        """Every user of the tenant, enabled or not."""

    def get_user(self, tenant: str, user_id: str) -> HostUser | None:
        ...

    def create_user(self, tenant: str, username: str, extension: str, fields: UserFields) -> HostUser:
        """Create an enabled user. Raises :class:`~flask_pbx365.exceptions.ExtensionInUseError` when the
        extension was taken meanwhile, so the caller can try the next number."""

    def update_user(self, tenant: str, user_id: str, fields: UserFields) -> HostUser:
        ...

    def set_user_enabled(self, tenant: str, user_id: str, enabled: bool) -> None:
        ...

    def delete_user(self, tenant: str, user_id: str) -> None:
        ...

    def is_extension_free(self, tenant: str, extension: str) -> bool:
        ...

    # --- extension groups, photos, caller ID --------------------------------------------------------------
    def ensure_group(self, tenant: str, name: str) -> None:
        """Create the extension group if missing."""

    def set_group_membership(self, tenant: str, name: str, user_id: str, member: bool) -> None:
        ...

    def set_photo(self, tenant: str, user_id: str, data: bytes | None, content_type: str | None = None) -> None:
        """Store the user's photo; ``None`` removes it."""

    def set_caller_id(self, tenant: str, user_id: str, number: str | None) -> None:
        """Set (or clear) the user's outbound caller ID, in E.164."""

    # --- phonebooks ---------------------------------------------------------------------------------------
    def list_personal_contacts(self, tenant: str, user_id: str, source: str) -> list[PhonebookEntry]:
        """The user's phonebook entries that came from ``source`` (entries the user made are not listed)."""

    def upsert_personal_contact(self, tenant: str, user_id: str, entry: PhonebookEntry) -> None:
        ...

    def delete_personal_contact(self, tenant: str, user_id: str, source: str, key: str) -> None:
        ...

    def list_company_contacts(self, tenant: str, source: str) -> list[PhonebookEntry]:
        ...

    def upsert_company_contact(self, tenant: str, entry: PhonebookEntry) -> None:
        ...

    def delete_company_contact(self, tenant: str, source: str, key: str) -> None:
        ...

    # --- presence -----------------------------------------------------------------------------------------
    def get_presence(self, tenant: str, user_id: str) -> tuple[PresenceStatus, PresenceSource]:
        ...

    def set_presence(self, tenant: str, user_id: str, status: PresenceStatus, source: PresenceSource) -> None:
        ...

    # --- sign-in ------------------------------------------------------------------------------------------
    def login_user(self, tenant: str, user_id: str, target: SignInTarget) -> Response:
        """Start the host's session for the user (``admin`` portal or ``web`` client) and return the response
        that lands them on the right page."""

    def issue_app_token(self, tenant: str, user_id: str) -> dict:
        """A session token for the mobile/desktop app, as the host's app API expects it."""

    # --- URLs and mail ------------------------------------------------------------------------------------
    def public_urls(self, tenant: str) -> PublicURLs:
        ...

    def admin_emails(self, tenant: str) -> list[str]:
        """Where the extension sends admin notices (certificate expiry, held sync runs)."""

    def send_mail(self, tenant: str, message: MailMessage) -> None:
        """Send through the host's mail transport (the extension's admin notices use it). A host that routes its
        notification mail through :func:`flask_pbx365.mail.send_mail` when the Mail tab is on covers these too."""
