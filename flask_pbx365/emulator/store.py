"""The emulator's thread-safe in-memory state: tenants, their directory and mailboxes, and the change log.

Every handler takes ``store.lock`` (an ``RLock``) while it reads or mutates a tenant. Every mutation of a
directory or Outlook object calls :meth:`Store.record_change`, which appends a :class:`Change` to
``tenant.changes`` (delta queries read it) and calls every listener (subscriptions notify from there).
"""
from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

CLOUD_NAMES = ("global", "usgov", "usgov-dod", "china")
CHANGE_KINDS = ("user", "group", "contact", "contactFolder", "event")
CHANGE_TYPES = ("created", "updated", "deleted", "restored")


class UnknownTenant(LookupError):
    """No tenant with that id or verified domain exists in the emulator."""

    def __init__(self, tid: str):
        super().__init__(f"Tenant {tid!r} does not exist in the emulator.")
        self.tid = tid


@dataclass(frozen=True)
class Change:
    """One entry of a tenant's change log.

    ``owner`` is the mailbox user id for Outlook kinds; ``data`` is free detail (for users and groups,
    ``{"properties": [changed property names]}``; for deletions of users, ``{"permanent": bool}``).
    """

    seq: int
    kind: str
    object_id: str
    change_type: str
    owner: str | None
    at: datetime
    data: dict | None = None


@dataclass
class Tenant:
    """One Entra tenant and the mailboxes of its users.

    Object dicts use Graph property names; keys starting with ``_`` are private emulator state and never
    leave the emulator (``_password``, ``_deleted``, ``_photo`` = ``{"bytes","contentType","etag"}`` or None,
    ``_mailboxSettings``; groups carry ``_members``).
    """

    id: str
    display_name: str
    domains: list[str]
    cloud: str = "global"
    users: dict[str, dict] = field(default_factory=dict)
    groups: dict[str, dict] = field(default_factory=dict)
    applications: dict[str, dict] = field(default_factory=dict)
    contact_folders: dict[str, dict[str, dict]] = field(default_factory=dict)
    contacts: dict[str, dict[str, dict]] = field(default_factory=dict)
    events: dict[str, dict[str, dict]] = field(default_factory=dict)
    messages: dict[str, dict[str, dict]] = field(default_factory=dict)
    outbox: list[dict] = field(default_factory=list)
    subscriptions: dict[str, dict] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    #: Bumped by ``POST /_emulator/tenants/{tid}/delta/reset``: every delta/skip token minted before is void.
    token_epoch: int = 0
    #: Throttling overrides from ``PATCH /_emulator/tenants/{tid}`` ``{"throttle": {...}}``.
    throttle: dict = field(default_factory=dict)

    @property
    def default_domain(self) -> str:
        return self.domains[0] if self.domains else f"{self.id[:8]}.onmicrosoft.example"

    def counts(self) -> dict[str, int]:
        """Object counts as ``GET /_emulator/tenants/{tid}`` reports them."""
        return {
            "users": sum(1 for u in self.users.values() if not u.get("_deleted")),
            "deletedUsers": sum(1 for u in self.users.values() if u.get("_deleted")),
            "groups": len(self.groups),
            "contacts": sum(len(c) for c in self.contacts.values()),
            "contactFolders": sum(len(c) for c in self.contact_folders.values()),
            "events": sum(len(e) for e in self.events.values()),
            "applications": len(self.applications),
            "subscriptions": len(self.subscriptions),
            "outbox": len(self.outbox),
        }


Listener = Callable[[Tenant, Change], None]


class Store:
    """All tenants plus emulator-wide state (faults, request log, signing keys live on the app)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tenants: dict[str, Tenant] = {}
        self._seq = 0
        self._listeners: list[Listener] = []

    def tenant(self, tid: str) -> Tenant:
        """The tenant whose id (case-insensitive GUID) or verified domain is ``tid``; raises :class:`UnknownTenant`."""
        key = (tid or "").lower()
        with self.lock:
            found = self.tenants.get(key)
            if found is not None:
                return found
            for t in self.tenants.values():
                if key in (d.lower() for d in t.domains):
                    return t
        raise UnknownTenant(tid)

    def add_tenant(self, tenant: Tenant) -> Tenant:
        """Register ``tenant`` (its id is normalised to lower case); an existing id is replaced."""
        tenant.id = tenant.id.lower()
        with self.lock:
            self.tenants[tenant.id] = tenant
        return tenant

    def next_seq(self) -> int:
        """The next value of the global, monotonically increasing change sequence."""
        with self.lock:
            self._seq += 1
            return self._seq

    @property
    def current_seq(self) -> int:
        """The last sequence number handed out (0 before any change)."""
        return self._seq

    def record_change(self, tenant: Tenant, kind: str, object_id: str, change_type: str,
                      owner: str | None = None, data: dict | None = None) -> int:
        """Log a change of one object and notify every listener; returns the change's sequence number."""
        if kind not in CHANGE_KINDS:
            raise ValueError(f"unknown change kind {kind!r}")
        if change_type not in CHANGE_TYPES:
            raise ValueError(f"unknown change type {change_type!r}")
        with self.lock:
            change = Change(self.next_seq(), kind, object_id, change_type, owner,
                            datetime.now(timezone.utc), data)
            tenant.changes.append(change)
            listeners = list(self._listeners)
        for fn in listeners:
            fn(tenant, change)
        return change.seq

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(tenant, change)`` after every recorded change.

        Listeners run synchronously in the thread that made the change, usually while it still holds
        ``store.lock``: they must be quick and must not block (queue any HTTP delivery to another thread).
        """
        with self.lock:
            self._listeners.append(fn)


def new_id() -> str:
    """A fresh object id (a GUID, as Entra uses for directory objects)."""
    return str(uuid.uuid4())


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without the emulator's private ``_`` keys."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}
