"""The Sign In tab: enable Sign in with Microsoft, who may use it, where, the mode, and the apps' redirect URIs."""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, flash, redirect, request, url_for

from ..feature import Tab
from ..models import UserLink
from ..redirects import redirect_uris
from ..routing import Routes
from ..settings import get_settings
from ..state import get_state
from ..tenants import find_config
from ..views.admin import current_tenant, render_tab, save_section

routes = Routes()


def _lines(name: str) -> list[str]:
    return [line.strip() for line in request.form.get(name, "").splitlines() if line.strip()]


def _form_settings() -> dict:
    return {
        "enabled": request.form.get("enabled") == "on",
        "who": request.form.get("who") or "all",
        "users": request.form.getlist("users"),
        "groups": _lines("groups"),
        "targets": [t for t in ("admin", "web", "app") if t in request.form.getlist("targets")],
        "mode": request.form.get("mode") or "microsoft_or_password",
        "app_redirect_uris": _lines("app_redirect_uris"),
    }


def _page(form: dict | None = None, error: str | None = None, status: int = 200):
    tenant = current_tenant()
    config = find_config(tenant)
    links = get_state().db.session.scalars(sa.select(UserLink).where(
        UserLink.tenant == tenant, UserLink.state == "active").order_by(UserLink.display_name, UserLink.id)).all()
    prefix = current_app.config["PBX365_URL_PREFIX"].rstrip("/")
    return render_tab(
        "pbx365/sign_in.html", form=form or get_settings(tenant)["sign_in"], error=error, links=links,
        redirect_uris=redirect_uris(tenant, config.verified_redirect_uris if config else None),
        connected=bool(config and config.client_id and config.directory_id),
        app_authorize=f"{prefix}/app/authorize", app_token=f"{prefix}/app/token",
    ), status


@routes.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if request.method == "GET":
        return _page()
    form = _form_settings()
    error = save_section("sign_in", form)
    if error:
        return _page(form=form, error=error, status=400)
    flash("Saved.", "success")
    return redirect(url_for("pbx365_admin.sign_in"))


TAB = Tab("sign_in", "Sign In", routes)
