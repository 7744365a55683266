"""Loading tenant fixtures (interfaces.md "Tenant fixture") and normalising users and applications."""
from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime, timezone
from typing import Any

from .store import CLOUD_NAMES, Store, Tenant, new_id

DEFAULT_MAILBOX_SETTINGS = {"userPurpose": "user", "timeZone": "UTC", "language": {"locale": "en-US",
                                                                                     "displayName": "English (United States)"},
                            "dateFormat": "M/d/yyyy", "timeFormat": "h:mm tt"}


#: Fixture-only user keys: not Graph properties, kept privately.
FIXTURE_ONLY = ("password", "mailboxSettings", "photo", "directoryRoles", "isAdmin")
ADMIN_ROLE = "Global Administrator"


class FixtureError(ValueError):
    """A tenant fixture or admin payload is invalid (answered as 400 with this message)."""


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def photo_from(content: bytes, content_type: str) -> dict:
    """The private ``_photo`` value for ``content`` (a fresh ETag each time, as Entra does per upload)."""
    etag = f'"{hashlib.sha256(content + new_id().encode()).hexdigest()[:32]}"'
    return {"bytes": content, "contentType": content_type, "etag": etag}


def make_user(tenant: Tenant, data: dict) -> dict:
    """A stored user from a Graph user object plus the fixture's ``password``/``mailboxSettings``/``photo``."""
    if not isinstance(data, dict):
        raise FixtureError("A user must be a JSON object.")
    user = {k: v for k, v in data.items() if k not in FIXTURE_ONLY and not k.startswith("_")}
    user["id"] = str(user.get("id") or new_id()).lower()
    if not user.get("userPrincipalName"):
        nick = user.get("mailNickname") or (user.get("displayName") or "").replace(" ", ".").lower() \
            or user["id"][:8]
        user["userPrincipalName"] = f"{nick}@{tenant.default_domain}"
    user.setdefault("accountEnabled", True)
    user.setdefault("userType", "Member")
    user.setdefault("businessPhones", [])
    if "displayName" not in user:
        name = " ".join(p for p in (user.get("givenName"), user.get("surname")) if p)
        user["displayName"] = name or user["userPrincipalName"].split("@")[0]
    if "mail" not in user and user["userType"] == "Member":
        user["mail"] = user["userPrincipalName"]
    user.setdefault("createdDateTime", now_iso())
    user["_password"] = data.get("password")
    roles = list(data.get("directoryRoles") or [])
    if data.get("isAdmin") and ADMIN_ROLE not in roles:
        roles.append(ADMIN_ROLE)
    user["_roles"] = roles
    user["_deleted"] = False
    user["_mailboxSettings"] = {**DEFAULT_MAILBOX_SETTINGS, **(data.get("mailboxSettings") or {})}
    user["_photo"] = None
    photo = data.get("photo")
    if photo:
        try:
            raw = base64.b64decode(photo.get("base64", ""), validate=True)
        except (binascii.Error, AttributeError) as exc:
            raise FixtureError(f"User {user['userPrincipalName']}: photo.base64 is not valid base64.") from exc
        user["_photo"] = photo_from(raw, photo.get("contentType") or "image/jpeg")
    return user


def make_application(data: dict, existing: dict | None = None) -> dict:
    """A stored application registration from the admin API's fields (merged over ``existing``)."""
    if not isinstance(data, dict):
        raise FixtureError("An application must be a JSON object.")
    app = dict(existing or {"appId": str(data.get("appId") or new_id()).lower(), "id": new_id(),
                            "servicePrincipalId": new_id(), "displayName": "App", "redirectUris": [],
                            "certificates": [], "permissions": [], "adminConsent": False, "secrets": []})
    for key in ("displayName", "redirectUris", "certificates", "permissions", "adminConsent", "secrets"):
        if key in data:
            app[key] = data[key]
    if "permissions" in data or "adminConsent" in data:
        app.pop("granted", None)  # the admin API states the grant outright: every configured permission
    for key in ("redirectUris", "certificates", "permissions", "secrets"):
        if not isinstance(app[key], list) or not all(isinstance(x, str) for x in app[key]):
            raise FixtureError(f'Application "{key}" must be a list of strings.')
    from .entra_certs import parse_certificate  # validates PEMs now, so the admin sees a bad upload at once
    for pem in app["certificates"]:
        parse_certificate(pem)
    return app


def granted_permissions(app: dict) -> list[str]:
    """The application permissions the app's tokens carry: the configured ones once admin consent was granted,
    less those removed since (removing a granted permission in the Azure portal revokes it at once; a permission
    added after consent waits for the next "Grant admin consent")."""
    if not app.get("adminConsent"):
        return []
    granted = app.get("granted")
    return [p for p in app.get("permissions") or [] if granted is None or p in granted]


def grant_admin_consent(app: dict) -> None:
    """Consent to every configured permission, as "Grant admin consent for <tenant>" does."""
    app["adminConsent"] = True
    app["granted"] = list(app.get("permissions") or [])


def configure_permissions(app: dict, permissions: list[str]) -> None:
    """Set the configured permissions as the portal's "API permissions" page does: removed ones are revoked,
    added ones are requested (not granted)."""
    app["granted"] = granted_permissions(app)
    app["permissions"] = list(permissions)


def _owner(tenant: Tenant, key: str) -> str:
    if key.lower() in tenant.users:
        return key.lower()
    for u in tenant.users.values():
        if (u.get("userPrincipalName") or "").lower() == key.lower():
            return u["id"]
    raise FixtureError(f"Fixture refers to unknown user {key!r}.")


def load_fixture(store: Store, fixture: dict) -> Tenant:
    """Create the tenant described by ``fixture`` (replacing one with the same id) and log its objects."""
    if not isinstance(fixture, dict):
        raise FixtureError("The tenant fixture must be a JSON object.")
    t = fixture.get("tenant") or {}
    cloud = t.get("cloud") or "global"
    if cloud not in CLOUD_NAMES:
        raise FixtureError(f"Unknown cloud {cloud!r}: use one of {', '.join(CLOUD_NAMES)}.")
    tid = str(t.get("id") or new_id()).lower()
    domains = t.get("domains") or [f"t{tid[:8]}.onmicrosoft.example"]
    tenant = Tenant(id=tid, display_name=t.get("displayName") or "Contoso", domains=list(domains), cloud=cloud)
    for data in fixture.get("users") or []:
        user = make_user(tenant, data)
        tenant.users[user["id"]] = user
    for data in fixture.get("groups") or []:
        group = {k: v for k, v in data.items() if k != "members"}
        group["id"] = str(group.get("id") or new_id()).lower()
        group.setdefault("displayName", group["id"])
        group.setdefault("securityEnabled", True)
        group.setdefault("mailEnabled", False)
        group.setdefault("groupTypes", [])
        group["_members"] = [str(m).lower() for m in data.get("members") or []]
        tenant.groups[group["id"]] = group
    for data in fixture.get("applications") or []:
        app = make_application(data)
        tenant.applications[app["appId"]] = app
    for attr, key in (("contact_folders", "contactFolders"), ("contacts", "contacts"), ("events", "events")):
        for owner_key, items in (fixture.get(key) or {}).items():
            owner = _owner(tenant, owner_key)
            bucket = getattr(tenant, attr).setdefault(owner, {})
            for item in items or []:
                obj = dict(item)
                obj["id"] = str(obj.get("id") or new_id())
                bucket[obj["id"]] = obj
    with store.lock:
        store.add_tenant(tenant)
        for uid in tenant.users:
            store.record_change(tenant, "user", uid, "created", data={"properties": []})
        for gid in tenant.groups:
            store.record_change(tenant, "group", gid, "created")
        for attr, kind in (("contact_folders", "contactFolder"), ("contacts", "contact"), ("events", "event")):
            for owner, items in getattr(tenant, attr).items():
                for oid in items:
                    store.record_change(tenant, kind, oid, "created", owner=owner)
    return tenant


def as_int(value: Any, name: str, default: int, *, minimum: int = 0, maximum: int = 10**7) -> int:
    """``value`` as an int in range, or :class:`FixtureError` naming ``name``."""
    if value is None:
        return default
    try:
        n = int(value)
    except (TypeError, ValueError) as exc:
        raise FixtureError(f'"{name}" must be an integer.') from exc
    if not minimum <= n <= maximum:
        raise FixtureError(f'"{name}" must be between {minimum} and {maximum}.')
    return n
