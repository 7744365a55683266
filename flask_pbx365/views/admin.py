"""The admin blueprint: every route checks the host's admin rule and CSRF before anything else."""
from __future__ import annotations

from typing import Iterable

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from .. import signals
from ..csrf import protect
from ..exceptions import PBX365Error
from ..feature import Tab
from ..health import tab_problems
from ..runs import request_run
from ..settings import import_settings
from ..state import get_state
from .headers import secure


def build_admin_blueprint(tabs: Iterable[Tab]) -> Blueprint:
    """The admin blueprint of one app (``PBX365_ADMIN_URL_PREFIX``) with the routes of ``tabs``, in order.

    Endpoints are ``pbx365_admin.<view name>``; the first tab is the landing page.
    """
    tabs = tuple(tabs)
    blueprint = Blueprint("pbx365_admin", __name__, template_folder="../templates")
    blueprint.before_request(require_tenant_admin)
    blueprint.after_request(secure)
    for tab in tabs:
        tab.routes.add_to(blueprint)
    landing = f"pbx365_admin.{tabs[0].endpoint}"
    blueprint.add_url_rule("/", "index", lambda: redirect(url_for(landing)))
    return blueprint


def require_tenant_admin():
    """Resolve the tenant from the admin's scope; 403 for anyone who may not administer it."""
    host = get_state().host
    tenant = host.current_tenant()
    if tenant is None:
        return redirect(host.login_url(request.full_path.rstrip("?")))
    if not host.is_tenant_admin(tenant):
        abort(403, description="Only an administrator of this tenant may change its Microsoft 365 integration.")
    g.pbx365_tenant = tenant
    _limit_body(int(get_state().app.config["PBX365_MAX_FORM_BYTES"]))
    protect()
    return None


def _limit_body(limit: int) -> None:
    """413 for a body over ``limit`` bytes, before the form is read."""
    if (request.content_length or 0) > limit:
        abort(413)
    try:
        request.max_content_length = limit  # Flask >= 3.1: also bounds a body sent without Content-Length
    except AttributeError:
        pass  # older Flask: read-only; werkzeug does not parse a form without Content-Length there


def current_tenant() -> str:
    return g.pbx365_tenant


def save_section(section: str, values: dict) -> str | None:
    """Store one tab's options for the current tenant and announce it (``signals.settings_changed``).

    Returns the admin-readable reason when the values are refused (nothing is stored then), else ``None``.
    """
    try:
        import_settings(current_tenant(), {section: values})
    except PBX365Error as exc:
        return str(exc)
    signals.settings_changed.send(get_state().app, tenant=current_tenant())
    return None


def start_run(kind: str, started: str) -> str | None:
    """Request a manual run of ``kind`` for the current tenant; ``started`` flashed, or the reason it could not
    start. Returns that reason (None when started)."""
    try:
        request_run(current_tenant(), kind, trigger="manual")
    except PBX365Error as exc:
        flash(str(exc), "error")
        return str(exc)
    flash(started, "success")
    return None


def render_tab(template: str, **context):
    """Render a tab's template inside the host's layout, with the tab bar of this app's tabs."""
    state = get_state()
    tabs = [(f"pbx365_admin.{tab.endpoint}", tab.label) for tab in state.tabs]
    return render_template(template, tabs=tabs, base_template=state.app.config["PBX365_BASE_TEMPLATE"],
                           problems=tab_problems(current_tenant(), request.endpoint or ""),
                           tenant=current_tenant(), **context)
