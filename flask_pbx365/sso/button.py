"""The "Sign in with Microsoft" button hosts drop into their login templates (template global
``pbx365_signin_button(tenant, target)``)."""
from __future__ import annotations

from flask import render_template, request, url_for
from markupsafe import Markup

from ..exceptions import PBX365Error
from ..settings import get_settings
from ..tenants import find_config
from .safety import safe_next


def signin_button(tenant: str | None, target: str, next_path: str | None = None) -> Markup:
    """The button for ``tenant``'s ``target`` (``"admin"`` or ``"web"``); empty when Microsoft sign-in is off
    there or the tenant is not connected. ``next_path`` (default: the page's ``?next=``) is where to land after
    sign-in, if it is a local path."""
    if not tenant or target not in ("admin", "web"):
        return Markup("")
    try:
        settings = get_settings(tenant)["sign_in"]
        config = find_config(tenant)
    except PBX365Error:
        return Markup("")
    if not settings["enabled"] or target not in settings["targets"] or config is None or not config.client_id \
            or not config.directory_id:
        return Markup("")
    next_path = safe_next(next_path if next_path is not None else request.values.get("next"))
    href = url_for("pbx365.sign_in_start", tenant=tenant, target=target, **({"next": next_path} if next_path else {}))
    return Markup(render_template("pbx365/signin_button.html", href=href, tenant=tenant, target=target))
