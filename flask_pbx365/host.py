"""The host adapter: the one door between flask_pbx365 and the PBX that mounts it.

The extension never reads or writes the host's tables. Everything it needs from the PBX goes through an object
implementing :class:`PBXHost`, passed as ``PBX365(app, db=db, host=MyHost())`` — the same pattern as
Flask-Dance's storage backends. ``demo_app.host.DemoHost`` is the reference implementation.

Tenants are identified by the host's tenant key (a slug such as ``"acme"``); users by the host's own user id,
as a string. Extensions are strings. Presence statuses are the values of :data:`PRESENCE_STATUSES`.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal, Protocol, runtime_checkable

from flask import Response

from .exceptions import ExtensionInUseError, PBX365Error

PRESENCE_STATUSES = ("available", "away", "dnd", "lunch", "business_trip", "holiday")
PresenceStatus = Literal["available", "away", "dnd", "lunch", "business_trip", "holiday"]
#: Who set a presence status: the user, calendar presence, an admin, or Teams presence.
PresenceSource = Literal["user", "calendar", "admin", "teams"]
PRESENCE_SOURCES = ("user", "calendar", "admin", "teams")
#: A user's phone as the host reports it to Teams presence (:func:`flask_pbx365.teams_presence.call_state_changed`).
CallState = Literal["idle", "ringing", "on_call"]
CALL_STATES = ("idle", "ringing", "on_call")
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


@dataclass
class UserChange:
    """One user's writes in a batch (:meth:`PBXHostBatch.apply_users`), applied in this order.

    ``user_id`` ``None`` creates an enabled user (``username``, ``extension``); else ``fields`` update it (a
    ``None`` field is left alone). ``enabled`` (``None``: unchanged), the caller ID when ``set_caller_id``, then
    ``join_groups`` / ``leave_groups``. ``delete`` deletes the user and ignores the rest. ``key`` is the caller's
    reference, given back in the result.
    """

    key: str
    user_id: str | None = None
    username: str | None = None
    extension: str | None = None
    fields: UserFields | None = None
    enabled: bool | None = None
    set_caller_id: bool = False
    caller_id: str | None = None
    join_groups: tuple[str, ...] = ()
    leave_groups: tuple[str, ...] = ()
    delete: bool = False


@dataclass
class UserChangeResult:
    """The outcome of one :class:`UserChange`: ``error`` is ``None`` when all of it was applied.

    ``user`` is the user after the change (always given for a create; ``None`` after a delete or an error).
    An error leaves that user as it was; :class:`~flask_pbx365.exceptions.ExtensionInUseError` on a create means
    the number was taken, and the caller tries another.
    """

    key: str
    user: HostUser | None = None
    error: PBX365Error | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


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


class PBXHostBatch(Protocol):
    """Optional batch operations a host may add to :class:`PBXHost` for large tenants.

    A host without them works unchanged: :func:`get_users` and :func:`apply_users` fall back to the per-user
    methods. A host with them does a batch in a few statements (one tenant lookup, bulk inserts and updates) inside
    the caller's transaction: the extension commits after each batch, so a crash leaves no half-applied user.
    """

    def get_users(self, tenant: str, user_ids: list[str]) -> dict[str, HostUser]:
        """The users of ``user_ids`` that exist in ``tenant``, by id (missing ids are left out)."""

    def apply_users(self, tenant: str, changes: list[UserChange]) -> list[UserChangeResult]:
        """Apply ``changes``; one result per change, in order. One bad change fails alone, with its reason
        (a :class:`~flask_pbx365.exceptions.PBX365Error`); the others are applied."""

    def apply_phonebook(self, tenant: str, user_id: str | None, source: str, upserts: list[PhonebookEntry],
                        deletes: list[str]) -> dict[str, PBX365Error]:
        """Upsert (by ``source`` and ``key``) and delete entries of ``source`` in the user's personal phonebook
        (``user_id``) or the company one (``None``); returns the errors by key (empty when all was applied)."""

    def phonebook_keys(self, tenant: str, user_id: str | None, source: str) -> set[str]:
        """The keys of the entries of ``source`` in the user's personal phonebook (``user_id``) or the company one
        (``None``): what an unchanged contacts round checks, without loading the entries."""

    def get_presences(self, tenant: str, user_ids: list[str]) -> dict[str, tuple[PresenceStatus, PresenceSource]]:
        """:meth:`PBXHost.get_presence` of many users at once (a presence pass checks its users in chunks): user
        id -> (status, source), ids that do not exist left out."""

    def personal_phonebook_keys(self, tenant: str, user_ids: list[str], source: str) -> dict[str, set[str]]:
        """:meth:`phonebook_keys` of many users' personal phonebooks at once (a contacts round checks 100 mailboxes
        together): user id -> keys, every id of ``user_ids`` present (an empty set for none)."""


class PBXHostCalls(Protocol):
    """An optional call-state query a host may add to :class:`PBXHost` for Teams presence.

    The host reports call state changes by calling :func:`flask_pbx365.teams_presence.call_state_changed`; with
    this method the extension also asks before it renews a long call's "In a call" in Teams, so a hang-up the
    host failed to report ends the Teams session at the next renewal instead of after the maximum call length.
    """

    def get_call_state(self, tenant: str, user_id: str) -> CallState:
        """The user's phone now: ``idle``, ``ringing`` or ``on_call``."""


def get_users(host: PBXHost, tenant: str, user_ids: Iterable[str]) -> list[HostUser]:
    """The existing users among ``user_ids``: the host's batch ``get_users`` when it has one, else ``get_user``."""
    ids = list(dict.fromkeys(user_ids))
    batch = getattr(host, "get_users", None)
    if callable(batch):
        found = batch(tenant, ids)
        return [found[i] for i in ids if i in found]
    return [user for user in (host.get_user(tenant, i) for i in ids) if user is not None]


def apply_users(host: PBXHost, tenant: str, changes: list[UserChange],
                savepoint: Callable[[], AbstractContextManager] = nullcontext) -> list[UserChangeResult]:
    """Apply ``changes`` through the host's batch ``apply_users`` when it has one, else one user at a time with
    the per-user methods, each inside ``savepoint()`` (e.g. ``db.session.begin_nested``) so a failure undoes only
    that user's writes."""
    batch = getattr(host, "apply_users", None)
    if callable(batch):
        results = batch(tenant, changes)
        if len(results) != len(changes) or [r.key for r in results] != [c.key for c in changes]:
            raise PBX365Error("The PBX's apply_users answered a different list of changes than it was given.")
        return results
    results = []
    for change in changes:
        try:
            with savepoint():
                results.append(UserChangeResult(change.key, _apply_one(host, tenant, change)))
        except PBX365Error as exc:
            results.append(UserChangeResult(change.key, error=exc))
    return results


def _apply_one(host: PBXHost, tenant: str, change: UserChange) -> HostUser | None:
    if change.delete:
        host.delete_user(tenant, change.user_id)
        return None
    if change.user_id is None:
        if not host.is_extension_free(tenant, change.extension or ""):
            raise ExtensionInUseError(change.extension or "")
        user = host.create_user(tenant, change.username or "", change.extension or "", change.fields or UserFields())
    elif change.fields is not None:
        user = host.update_user(tenant, change.user_id, change.fields)
    else:
        user = None
    user_id = user.id if user is not None else change.user_id
    if change.enabled is not None:
        host.set_user_enabled(tenant, user_id, change.enabled)
    if change.set_caller_id:
        host.set_caller_id(tenant, user_id, change.caller_id)
    for group in change.join_groups:
        host.set_group_membership(tenant, group, user_id, True)
    for group in change.leave_groups:
        host.set_group_membership(tenant, group, user_id, False)
    return user


def phonebook_keys(host: PBXHost, tenant: str, user_id: str | None, source: str) -> set[str]:
    """The keys of one phonebook's entries of ``source``: the host's batch ``phonebook_keys`` when it has one, else
    from the listed entries."""
    batch = getattr(host, "phonebook_keys", None)
    if callable(batch):
        return set(batch(tenant, user_id, source))
    found = (host.list_company_contacts(tenant, source) if user_id is None
             else host.list_personal_contacts(tenant, user_id, source))
    return {e.key for e in found if e.source == source}


def get_presences(host: PBXHost, tenant: str, user_ids: Iterable[str]
                  ) -> dict[str, tuple[PresenceStatus, PresenceSource]]:
    """The presence of each existing user among ``user_ids``: the host's batch ``get_presences`` when it has one,
    else ``get_presence`` user by user (a user it refuses is left out; the caller asks it alone for the reason)."""
    ids = list(dict.fromkeys(user_ids))
    batch = getattr(host, "get_presences", None)
    if callable(batch):
        found = batch(tenant, ids)
        return {i: found[i] for i in ids if i in found}
    out = {}
    for i in ids:
        try:
            out[i] = host.get_presence(tenant, i)
        except PBX365Error:
            continue
    return out


def personal_phonebook_keys(host: PBXHost, tenant: str, user_ids: Iterable[str], source: str) -> dict[str, set[str]]:
    """The keys of the entries of ``source`` in each user's personal phonebook: the host's batch
    ``personal_phonebook_keys`` when it has one, else :func:`phonebook_keys` user by user."""
    ids = list(dict.fromkeys(user_ids))
    batch = getattr(host, "personal_phonebook_keys", None)
    if callable(batch):
        found = batch(tenant, ids, source)
        return {i: set(found.get(i) or ()) for i in ids}
    return {i: phonebook_keys(host, tenant, i, source) for i in ids}


def apply_phonebook(host: PBXHost, tenant: str, user_id: str | None, source: str, upserts: list[PhonebookEntry],
                    deletes: list[str], savepoint: Callable[[], AbstractContextManager] = nullcontext
                    ) -> dict[str, PBX365Error]:
    """Phonebook writes through the host's batch ``apply_phonebook`` when it has one, else entry by entry
    (each inside ``savepoint()``); returns the errors by key."""
    batch = getattr(host, "apply_phonebook", None)
    if callable(batch):
        return batch(tenant, user_id, source, upserts, deletes)
    errors: dict[str, PBX365Error] = {}
    writes = [(e.key, lambda e=e: host.upsert_company_contact(tenant, e) if user_id is None
               else host.upsert_personal_contact(tenant, user_id, e)) for e in upserts]
    writes += [(k, lambda k=k: host.delete_company_contact(tenant, source, k) if user_id is None
                else host.delete_personal_contact(tenant, user_id, source, k)) for k in deletes]
    for key, write in writes:
        try:
            with savepoint():
                write()
        except PBX365Error as exc:
            errors[key] = exc
    return errors
