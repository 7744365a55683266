"""The two sign-in pages (admin portal ``/admin/login`` and web client ``/login``) share one flow.

Without ``?tenant=SLUG`` the page asks for the tenant first (which shows that tenant's "Sign in with Microsoft"
button) and also takes a full username (``name@tenant``; on the admin portal also the system admin's). With it,
the page shows the tenant's name, the username/password form (``name`` or ``name@tenant``) and the Microsoft button.

A tenant user whose organization chose "Microsoft only" on the Sign In tab is refused here (the extension's
:func:`flask_pbx365.sso.password_sign_in_refusal` decides); the system administrator is not a tenant user and
always keeps the password, the break-glass when Microsoft sign-in is misconfigured.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, render_template, request
from werkzeug.wrappers import Response

from flask_pbx365.sso import password_sign_in_refusal

from . import directory
from .models import SystemAdmin, Tenant, User, db


def login_page(*, target: str, template: str, authenticate) -> str | Response:
    """Render or process the login form. ``authenticate(account)`` signs in and returns the redirect, or returns
    an error message to show."""
    slug = (request.values.get("tenant") or "").strip().lower()
    tenant: Tenant | None = directory.get_tenant(slug) if slug else None
    if slug and tenant is None:
        flash(f"There is no tenant {slug!r}. Check the name your administrator gave you.", "error")
    if request.method == "POST":
        username = (request.form.get("username") or "").strip().lower()
        account = _find_account(username, tenant, allow_system=target == "admin")
        if account is not None and account.check_password(request.form.get("password") or ""):
            result = _microsoft_only(account, target) or authenticate(account)
            if not isinstance(result, str):
                db.session.commit()
                return result
            flash(result, "error")
        else:
            flash("Wrong username or password.", "error")
    return render_template(template, tenant=tenant, target=target, next=request.values.get("next", ""),
                           username=request.form.get("username", ""))


def _microsoft_only(account: User | SystemAdmin, target: str) -> str | None:
    """The refusal to show when ``account`` must sign in with Microsoft at ``target``; ``None`` otherwise."""
    if not isinstance(account, User):
        return None
    return password_sign_in_refusal(account.tenant.slug, str(account.id), target)


def _find_account(username: str, tenant: Tenant | None, *, allow_system: bool) -> User | SystemAdmin | None:
    if tenant is None and "@" not in username:
        if not allow_system:
            return None
        return db.session.scalar(sa.select(SystemAdmin).where(SystemAdmin.username == username))
    if tenant is None:
        tenant = directory.get_tenant(username.rpartition("@")[2])
        if tenant is None:
            return None
    try:
        username = directory.qualify_username(username, tenant)
    except ValueError:
        return None
    return db.session.scalar(sa.select(User).where(User.username == username, User.tenant_id == tenant.id))
