"""PBX users and extensions: the operations the API, the admin pages and :class:`~demo_app.host.DemoHost` share."""
from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from flask_pbx365.exceptions import ExtensionInUseError, HostAdapterError
from flask_pbx365.rows import in_keys
from flask_pbx365.teams_presence import call_state_changed

from .models import Tenant, User, db

FIRST_EXTENSION = 100
EXTENSION_RE = re.compile(r"^[0-9]{2,15}$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_NAME_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def get_tenant(slug: str) -> Tenant | None:
    return db.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))


def tenant_users(tenant: Tenant) -> list[User]:
    """Every user of the tenant, groups loaded with them (one query more, not one per user)."""
    return list(db.session.scalars(sa.select(User).options(selectinload(User.groups)).where(User.tenant_id == tenant.id)
                                    .order_by(sa.func.length(User.extension), User.extension)))


def user_by_extension(tenant: Tenant, extension: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.tenant_id == tenant.id, User.extension == extension))


def next_free_extension(tenant: Tenant, start: int = FIRST_EXTENSION) -> str:
    """The lowest number ``>= start`` no user of the tenant has."""
    taken = set(db.session.scalars(sa.select(User.extension).where(User.tenant_id == tenant.id)))
    number = start
    while str(number) in taken:
        number += 1
    return str(number)


def qualify_username(name: str, tenant: Tenant) -> str:
    """``bob`` → ``bob@acme``; a name already ending in ``@acme`` is kept; another tenant's suffix is refused."""
    name = name.strip().lower()
    local, at, suffix = name.rpartition("@")
    if not at:
        local = name
    elif suffix != tenant.slug:
        raise ValueError(f"usernames of tenant {tenant.slug} end in @{tenant.slug}")
    if not local or _NAME_UNSAFE.search(local):
        raise ValueError("a username may only contain letters, digits, '.', '_' and '-'")
    return f"{local}@{tenant.slug}"


def unique_username(seed: str, tenant: Tenant) -> str:
    """A free ``name@tenant`` derived from ``seed`` (an email address or a name): ``bob``, ``bob2``, ..."""
    local = _NAME_UNSAFE.sub("", seed.strip().lower().split("@", 1)[0]) or "user"
    candidate, n = local, 1
    while db.session.scalar(sa.select(User.id).where(User.username == f"{candidate}@{tenant.slug}")) is not None:
        n += 1
        candidate = f"{local}{n}"
    return f"{candidate}@{tenant.slug}"


def unique_usernames(seeds: list[str], tenant: Tenant) -> list[str]:
    """:func:`unique_username` for many seeds at once: one query, plus one per name that was taken."""
    locals_ = [_NAME_UNSAFE.sub("", s.strip().lower().split("@", 1)[0]) or "user" for s in seeds]
    wanted = sorted({f"{local}@{tenant.slug}" for local in locals_})
    taken = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        taken.update(db.session.scalars(sa.select(User.username).where(in_keys(db.session, User.username, chunk))))
    out = []
    for local in locals_:
        name = f"{local}@{tenant.slug}"
        if name in taken:
            name, n = f"{local}2@{tenant.slug}", 2
            while name in taken or db.session.scalar(sa.select(User.id).where(User.username == name)) is not None:
                n += 1
                name = f"{local}{n}@{tenant.slug}"
        taken.add(name)
        out.append(name)
    return out


def add_user(tenant: Tenant, user: User) -> User:
    """Insert ``user`` inside a savepoint.

    Raises :class:`ExtensionInUseError` when the extension was taken (also by a concurrent transaction: the
    database's unique constraint decides), :class:`HostAdapterError` when the username was. Only the savepoint is
    rolled back, so the caller's other pending work survives.
    """
    user.tenant_id = tenant.id
    try:
        with db.session.begin_nested():
            db.session.add(user)
    except IntegrityError as exc:
        message = str(exc.orig).lower()
        if "extension" in message:
            raise ExtensionInUseError(user.extension) from exc
        raise HostAdapterError(f"The username {user.username} is already in use; choose another.") from exc
    return user


def create_local_user(tenant: Tenant, *, username: str, password: str | None, role: str = "user",
                      extension: str | None = None, first_name: str = "", last_name: str = "",
                      email: str | None = None, **fields: object) -> User:
    """Create a local PBX user; with no ``extension`` the first free one (retrying if a concurrent request won)."""
    if role not in ("user", "admin"):
        raise ValueError("role must be 'user' or 'admin'")
    if extension is not None and not EXTENSION_RE.match(extension):
        raise ValueError("an extension is 2 to 15 digits")
    for _attempt in range(20):
        user = User(username=qualify_username(username, tenant), role=role,
                    extension=extension or next_free_extension(tenant), first_name=first_name,
                    last_name=last_name, display_name=f"{first_name} {last_name}".strip(), email=email or None,
                    enabled=True, presence_status="available", presence_source="user", **fields)
        user.set_password(password)
        try:
            return add_user(tenant, user)
        except ExtensionInUseError:
            if extension is not None:
                raise
    raise ExtensionInUseError(extension or "?")


def user_json(user: User, object_ids: dict[str, str] | None = None) -> dict:
    """A user as ``GET /api/tenants/{tenant}/users`` shows it."""
    return {
        "extension": user.extension, "username": user.username, "first_name": user.first_name,
        "last_name": user.last_name, "display_name": user.display_name, "email": user.email,
        "mobile": user.mobile, "caller_id": user.caller_id, "department": user.department,
        "job_title": user.job_title, "enabled": user.enabled, "groups": [g.name for g in user.groups],
        "photo_sha256": user.photo_sha256, "presence": user.presence_status, "role": user.role,
        "m365_object_id": (object_ids or {}).get(str(user.id)),
    }


def m365_object_ids(tenant: str) -> dict[str, str]:
    """Host user id → Entra object id of the tenant's users the extension linked (its ``pbx365_user_link``)."""
    try:
        from flask_pbx365.models import UserLink
    except ImportError:
        return {}
    rows = db.session.execute(sa.select(UserLink.host_user_id, UserLink.object_id).where(UserLink.tenant == tenant))
    return {host_user_id: object_id for host_user_id, object_id in rows}


CALL_STATES = ("idle", "ringing", "on_call")


def set_call_state(user: User, state: str) -> None:
    """The simulated desk phone of ``user`` rings, is answered or hangs up: stored, reported to the extension's
    Teams presence (which shows "In a call" in Teams), and committed."""
    if state not in CALL_STATES:
        raise HostAdapterError(f"state is one of {', '.join(CALL_STATES)}")
    user.call_state = state
    call_state_changed(user.tenant.slug, str(user.id), state)
    db.session.commit()
