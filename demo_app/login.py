"""The two sign-in pages (admin portal ``/admin/login`` and web client ``/login``) share one flow.

Without ``?tenant=SLUG`` the page asks for the tenant first; with it the page shows the tenant's name, the
username/password form and the tenant's "Sign in with Microsoft" button. ``?system=1`` (admin portal only) is the
system administrator's form.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, render_template, request
from werkzeug.wrappers import Response

from . import directory
from .models import SystemAdmin, Tenant, User, db


def login_page(*, target: str, template: str, authenticate) -> str | Response:
    """Render or process the login form. ``authenticate(user_or_admin)`` signs in and returns the redirect,
    or returns an error message."""
    system = target == "admin" and request.values.get("system") == "1"
    slug = (request.values.get("tenant") or "").strip().lower()
    tenant: Tenant | None = directory.get_tenant(slug) if slug else None
    if slug and tenant is None:
        flash(f"There is no tenant {slug!r}. Check the name your administrator gave you.", "error")
    if request.method == "POST" and (tenant or system):
        username = (request.form.get("username") or "").strip().lower()
        password = request.form.get("password") or ""
        account = _find_account(username, tenant, system)
        if account is not None and account.check_password(password):
            result = authenticate(account)
            if not isinstance(result, str):
                db.session.commit()
                return result
            flash(result, "error")
        else:
            flash("Wrong username or password.", "error")
    return render_template(template, tenant=tenant, system=system, target=target,
                           next=request.values.get("next", ""), username=request.form.get("username", ""))


def _find_account(username: str, tenant: Tenant | None, system: bool) -> User | SystemAdmin | None:
    if system:
        return db.session.scalar(sa.select(SystemAdmin).where(SystemAdmin.username == username))
    try:
        username = directory.qualify_username(username, tenant)
    except ValueError:
        return None
    return db.session.scalar(sa.select(User).where(User.username == username, User.tenant_id == tenant.id))

