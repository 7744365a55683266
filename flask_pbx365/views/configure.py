"""The Configure tab: app and directory IDs, cloud, redirect URIs, key pairs, test connection, admin consent."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import Response, abort, current_app, flash, redirect, request, url_for

from ..clouds import CLOUD_CHOICES, CLOUDS
from ..connection import test_connection
from ..exceptions import KeyPairError
from ..feature import Tab
from ..keys import activate_key_pair, certificate_pem, generate_key_pair, list_key_pairs
from ..redirects import redirect_uri_for_request, redirect_uris
from ..routing import Routes
from ..settings import get_settings
from ..tenants import cloud_of, find_config, require_connection
from .admin import current_tenant, render_tab, save_section

routes = Routes()
from ..oauth import remember_state

CONFIGURE_FIELDS = ("client_id", "directory_id", "cloud", "login_url", "graph_url", "ca_bundle")


def _page(form: dict | None = None, error: str | None = None, test_result: dict | None = None, status: int = 200):
    tenant = current_tenant()
    settings = get_settings(tenant)
    config = find_config(tenant)
    warn_days = sorted(current_app.config["PBX365_CERT_WARNING_DAYS"])
    keys = list_key_pairs(tenant)
    active = next((k for k in keys if k.active), None)
    return render_tab(
        "pbx365/configure.html", form=form or settings["configure"], error=error, clouds=CLOUD_CHOICES,
        cloud_endpoints=CLOUDS, redirect_uris=redirect_uris(tenant, config.verified_redirect_uris if config else None),
        keys=keys, active_key=active, warn_days=warn_days, test_result=test_result,
        consent_granted_at=config.consent_granted_at if config else None,
    ), status


@routes.route("/configure", methods=["GET", "POST"])
def configure():
    if request.method == "GET":
        return _page()
    form = {field: request.form.get(field, "").strip() or None for field in CONFIGURE_FIELDS}
    form["cloud"] = form["cloud"] or "global"
    if form["cloud"] != "custom":
        form.update(login_url=None, graph_url=None, ca_bundle=None)
    error = save_section("configure", form)
    if error:
        return _page(form=form, error=error, status=400)
    flash("Saved.", "success")
    return redirect(url_for("pbx365_admin.configure"))


@routes.post("/configure/keys")
def generate_keys():
    info = generate_key_pair(current_tenant())
    if info.active:
        flash("Key pair generated. Download public_key.pem and upload it in Entra: App registrations > your app > "
              "Certificates & secrets > Upload certificate.", "success")
    else:
        flash("New key pair generated; the current one stays active. Upload the new public_key.pem to Entra, "
              "then click 'Use this key pair'.", "success")
    return redirect(url_for("pbx365_admin.configure") + "#keys")


@routes.get("/configure/keys/<sha256>/public_key.pem")
def download_certificate(sha256: str):
    try:
        pem = certificate_pem(current_tenant(), sha256)
    except KeyPairError:
        abort(404)
    return Response(pem, mimetype="application/x-pem-file",
                    headers={"Content-Disposition": 'attachment; filename="public_key.pem"'})


@routes.post("/configure/keys/<sha256>/activate")
def activate_keys(sha256: str):
    try:
        activate_key_pair(current_tenant(), sha256)
    except KeyPairError as exc:
        if "has no key pair" in str(exc):
            abort(404)
        flash(str(exc), "error")
    else:
        flash("This key pair is now in use. You can delete the old certificate in Entra.", "success")
    return redirect(url_for("pbx365_admin.configure") + "#keys")


@routes.post("/configure/test-connection")
def run_test_connection():
    return _page(test_result=test_connection(current_tenant()))


@routes.post("/configure/admin-consent")
def admin_consent():
    """Send the admin to Microsoft's admin consent page (3CX's "Sign in to Microsoft 365")."""
    tenant = current_tenant()
    settings = get_settings(tenant)["configure"]
    if not settings["client_id"] or not settings["directory_id"]:
        flash("Enter and save the application (client) ID and the directory (tenant) ID first.", "error")
        return redirect(url_for("pbx365_admin.configure"))
    cloud = cloud_of(require_connection(tenant))
    redirect_uri = redirect_uri_for_request(tenant, request.host_url)
    state = remember_state("admin_consent", tenant, redirect_uri)
    query = urlencode({"client_id": settings["client_id"], "state": state, "redirect_uri": redirect_uri})
    return redirect(f"{cloud.login_url}/{settings['directory_id']}/adminconsent?{query}")


TAB = Tab("configure", "Configure", routes)
