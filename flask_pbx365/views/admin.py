"""The admin blueprint: every route checks the host's admin rule and CSRF before anything else."""
from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from ..csrf import protect
from ..state import get_state

admin_bp = Blueprint("pbx365_admin", __name__, template_folder="../templates")

#: (endpoint, label) of the tabs, in order.
TABS: list[tuple[str, str]] = [("pbx365_admin.configure", "Configure")]


@admin_bp.before_request
def require_tenant_admin():
    """Resolve the tenant from the admin's scope; 403 for anyone who may not administer it."""
    host = get_state().host
    tenant = host.current_tenant()
    if tenant is None:
        return redirect(host.login_url(request.full_path.rstrip("?")))
    if not host.is_tenant_admin(tenant):
        abort(403, description="Only an administrator of this tenant may change its Microsoft 365 integration.")
    g.pbx365_tenant = tenant
    protect()


def current_tenant() -> str:
    return g.pbx365_tenant


def save_section(section: str, values: dict) -> str | None:
    """Store one tab's options for the current tenant and announce it (``signals.settings_changed``).

    Returns the admin-readable reason when the values are refused (nothing is stored then), else ``None``.
    """
    from .. import signals
    from ..exceptions import PBX365Error
    from ..settings import import_settings

    try:
        import_settings(current_tenant(), {section: values})
    except PBX365Error as exc:
        return str(exc)
    signals.settings_changed.send(get_state().app, tenant=current_tenant())
    return None


def render_tab(template: str, **context):
    state = get_state()
    return render_template(template, tabs=TABS, base_template=state.app.config["PBX365_BASE_TEMPLATE"],
                           tenant=current_tenant(), **context)


@admin_bp.route("/")
def index():
    return redirect(url_for("pbx365_admin.configure"))
