"""Who is signed in: the admin portal (system admin or tenant admin) and the user web client, kept apart.

The session holds ``admin`` (``{"kind": "system" | "tenant", "id": ...}``), ``scope`` (the tenant a system admin
switched into) and ``web_user`` (the web client's user id).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import has_request_context, redirect, request, session, url_for

from .models import SystemAdmin, Tenant, User, db


@dataclass
class AdminIdentity:
    """The signed-in admin. ``tenant`` is the scope: a tenant admin's own, or the one a system admin chose."""

    name: str
    is_system: bool
    tenant: Tenant | None
    user: User | None = None

    def may_administer(self, slug: str) -> bool:
        if self.is_system:
            return True
        return self.tenant is not None and self.tenant.slug == slug


def _cache() -> dict:
    # Per request (not ``g``: an app context, and so ``g``, may outlive many requests, e.g. in tests).
    return request.environ.setdefault("demo_app.auth", {}) if has_request_context() else {}


def current_admin() -> AdminIdentity | None:
    """The admin portal's signed-in admin, or ``None`` (also when the account was disabled meanwhile)."""
    cache = _cache()
    if "admin" not in cache:
        cache["admin"] = _load_admin()
    return cache["admin"]


def _load_admin() -> AdminIdentity | None:
    data = session.get("admin")
    if not isinstance(data, dict):
        return None
    if data.get("kind") == "system":
        admin = db.session.get(SystemAdmin, data.get("id"))
        if admin is None:
            return None
        scope = session.get("scope")
        tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == scope)) if scope else None
        return AdminIdentity(admin.username, True, tenant)
    user = db.session.get(User, data.get("id"))
    if user is None or not user.enabled or not user.is_admin:
        return None
    return AdminIdentity(user.username, False, user.tenant, user)


def current_web_user() -> User | None:
    """The web client's signed-in user (enabled), or ``None``."""
    cache = _cache()
    if "web_user" not in cache:
        user = db.session.get(User, session["web_user"]) if session.get("web_user") else None
        cache["web_user"] = user if user is not None and user.enabled else None
    return cache["web_user"]


def sign_in_admin(*, user: User | None = None, system: SystemAdmin | None = None) -> None:
    session.pop("scope", None)
    session["admin"] = {"kind": "system", "id": system.id} if system else {"kind": "tenant", "id": user.id}
    _cache().pop("admin", None)


def sign_in_web(user: User) -> None:
    session["web_user"] = user.id
    _cache().pop("web_user", None)


def sign_out_admin() -> None:
    session.pop("admin", None)
    session.pop("scope", None)
    _cache().pop("admin", None)


def sign_out_web() -> None:
    session.pop("web_user", None)
    _cache().pop("web_user", None)


def safe_next(target: str | None, default: str) -> str:
    """``target`` when it is a local path (no open redirects), else ``default``."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def admin_required(view: Callable) -> Callable:
    """Send a visitor who is not a signed-in admin to the admin login page."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current_admin() is None:
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)
    return wrapper


def web_login_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current_web_user() is None:
            return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)
    return wrapper
