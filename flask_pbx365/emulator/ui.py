"""``/_emulator/ui``: a minimal "Microsoft Entra admin center" (plain HTML forms, loopback only).

A person picks a tenant, registers an app, adds redirect URIs, uploads ``public_key.pem``, selects application
permissions and grants admin consent, as they would in the Azure portal. Form field names: ``displayName``,
``redirectUri``, ``certificate`` (file), ``permissions`` (checkboxes); buttons carry ``id`` attributes
(``register``, ``add-redirect``, ``upload-cert``, ``save-permissions``, ``grant-consent``).
"""
from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template_string, request, url_for

from .fixtures import (FixtureError, configure_permissions, grant_admin_consent, granted_permissions,
                       make_application)
from .graph_common import store
from .graph_presence import AVAILABILITIES, admin_view, set_client_presence
from .store import UnknownTenant

ui_bp = Blueprint("m365_ui", __name__, url_prefix="/_emulator/ui")

PERMISSIONS = ["User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "User-Phone.ReadWrite.All",
               "ProfilePhoto.Read.All", "GroupMember.Read.All", "Group.Read.All", "Directory.Read.All",
               "Contacts.Read", "Contacts.ReadWrite", "MailboxSettings.Read", "Mail.Send", "Mail.ReadWrite",
               "Calendars.Read", "Presence.Read.All", "Presence.ReadWrite.All"]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Microsoft Entra admin center (emulator)</title>
<style>body{font-family:Segoe UI,Arial,sans-serif;margin:24px}section{border:1px solid #ccc;padding:12px;margin:12px 0}
.err{color:#b00}.ok{color:#070}code{background:#f4f4f4}</style></head><body>
<h1>Microsoft Entra admin center</h1>
{% if error %}<p class="err" id="error">{{ error }}</p>{% endif %}{% if ok %}<p class="ok" id="ok">{{ ok }}</p>{% endif %}
<form method="get"><label>Tenant <select name="tenant" id="tenant">{% for t in tenants %}
<option value="{{ t.id }}" {% if tenant and t.id == tenant.id %}selected{% endif %}>{{ t.display_name }} ({{ t.id }})</option>
{% endfor %}</select></label> <input type="submit" value="Open" id="open-tenant"></form>
{% if tenant %}<p>Directory (tenant) ID: <code id="tenant-id">{{ tenant.id }}</code> · domains: {{ tenant.domains|join(", ") }}</p>
<section><h2>App registrations</h2>
<form method="post" action="{{ url_for('m365_ui.register', tid=tenant.id) }}">
<label>Name <input name="displayName" id="displayName" required></label>
<input type="submit" value="Register" id="register"></form></section>
{% for app in tenant.applications.values() %}<section class="app" data-app-id="{{ app.appId }}">
<h3>{{ app.displayName }}</h3><p>Application (client) ID: <code class="app-id">{{ app.appId }}</code></p>
<p>Redirect URIs:</p><ul>{% for u in app.redirectUris %}<li>{{ u }}</li>{% endfor %}</ul>
<form method="post" action="{{ url_for('m365_ui.add_redirect', tid=tenant.id, app_id=app.appId) }}">
<input name="redirectUri" type="url" placeholder="https://..." required><input type="submit" value="Add URI" id="add-redirect"></form>
<p>Certificates: {{ app.certificates|length }}</p>
<form method="post" enctype="multipart/form-data" action="{{ url_for('m365_ui.upload_cert', tid=tenant.id, app_id=app.appId) }}">
<input type="file" name="certificate" accept=".pem,.cer,.crt"><input type="submit" value="Upload certificate" id="upload-cert"></form>
<form method="post" action="{{ url_for('m365_ui.set_permissions', tid=tenant.id, app_id=app.appId) }}">
<p>API permissions (Microsoft Graph, application):</p>{% for p in permissions %}
<label><input type="checkbox" name="permissions" value="{{ p }}" {% if p in app.permissions %}checked{% endif %}> {{ p }}</label>{% if p in app.permissions %} <small class="grant">{{ "granted" if p in granted(app) else "not granted" }}</small>{% endif %}<br>{% endfor %}
<input type="submit" value="Save permissions" id="save-permissions"></form>
<form method="post" action="{{ url_for('m365_ui.grant', tid=tenant.id, app_id=app.appId) }}">
<p>Admin consent: <b class="consent">{{ "Granted" if app.adminConsent else "Not granted" }}</b></p>
<input type="submit" value="Grant admin consent for {{ tenant.display_name }}" id="grant-consent"></form>
</section>{% endfor %}
<section id="teams-presence"><h2>Microsoft Teams presence</h2>
<p>What Teams shows each user now (application sessions such as a PBX's "In a call" included); change what a
user's own Teams client reports.</p>
<table><thead><tr><th>User</th><th>Teams shows</th><th>Application sessions</th><th>Their Teams client</th></tr></thead><tbody>
{% for row in presence %}<tr data-user="{{ row.upn }}"><td>{{ row.name }}</td>
<td class="teams-shows">{{ row.view.availability }}{% if row.view.activity != row.view.availability %} · {{ row.view.activity }}{% endif %}</td>
<td>{% for s in row.view.sessions %}{{ s.availability }} · {{ s.activity }} (until {{ s.expiresAt[11:19] }})<br>{% endfor %}</td>
<td><form method="post" action="{{ url_for('m365_ui.set_teams', tid=tenant.id, uid=row.id) }}">
<select name="availability" aria-label="Teams client of {{ row.name }}">{% for a in availabilities %}
<option {% if row.view.client and row.view.client.availability == a %}selected{% endif %}>{{ a }}</option>{% endfor %}</select>
<input type="submit" value="Set"></form></td></tr>{% endfor %}</tbody></table></section>
{% endif %}</body></html>"""


def _render(tid: str | None, error: str | None = None, ok: str | None = None, status: int = 200) -> Response:
    with store().lock:
        tenants = list(store().tenants.values())
        tenant = None
        if tid:
            try:
                tenant = store().tenant(tid)
            except UnknownTenant:
                error = error or f"Tenant {tid} does not exist."
        elif tenants:
            tenant = tenants[0]
        presence = [] if tenant is None else [
            {"id": u["id"], "upn": u.get("userPrincipalName", ""), "name": u.get("displayName") or u["id"],
             "view": admin_view(tenant, u["id"])}
            for u in sorted(tenant.users.values(), key=lambda u: u.get("displayName") or "")[:200]
            if not u.get("_deleted")]
        html = render_template_string(PAGE, tenants=tenants, tenant=tenant, permissions=PERMISSIONS,
                                      error=error, ok=ok, presence=presence, granted=granted_permissions,
                                      availabilities=["Offline", "Available", "Busy", "DoNotDisturb", "BeRightBack",
                                                      "Away"])
    return Response(html, status=status, content_type="text/html; charset=utf-8")


@ui_bp.get("")
@ui_bp.get("/")
def index() -> Response:
    return _render(request.args.get("tenant"), ok=request.args.get("ok"))


def _app(tid: str, app_id: str) -> dict:
    return store().tenant(tid).applications[app_id]


def _back(tid: str, ok: str) -> Response:
    return redirect(url_for("m365_ui.index", tenant=tid, ok=ok), code=303)


@ui_bp.post("/<tid>/apps")
def register(tid: str) -> Response:
    with store().lock:
        app = make_application({"displayName": request.form.get("displayName") or "App"})
        store().tenant(tid).applications[app["appId"]] = app
    return _back(tid, f"Registered {app['displayName']} ({app['appId']}).")


@ui_bp.post("/<tid>/apps/<app_id>/redirect-uris")
def add_redirect(tid: str, app_id: str) -> Response:
    uri = (request.form.get("redirectUri") or "").strip()
    if not uri.startswith(("https://", "http://localhost", "http://127.0.0.1")):
        return _render(tid, error="Redirect URIs must start with https:// (or http://localhost).", status=400)
    with store().lock:
        app = _app(tid, app_id)
        if uri not in app["redirectUris"]:
            app["redirectUris"].append(uri)
    return _back(tid, "Redirect URI added.")


@ui_bp.post("/<tid>/apps/<app_id>/certificates")
def upload_cert(tid: str, app_id: str) -> Response:
    upload = request.files.get("certificate")
    pem = upload.read().decode("utf-8", "replace") if upload else ""
    with store().lock:
        app = _app(tid, app_id)
        try:
            updated = make_application({"certificates": app["certificates"] + [pem]}, existing=app)
        except FixtureError as exc:
            return _render(tid, error=str(exc), status=400)
        app.update(updated)
    return _back(tid, "Certificate uploaded.")


@ui_bp.post("/<tid>/apps/<app_id>/permissions")
def set_permissions(tid: str, app_id: str) -> Response:
    with store().lock:
        app = _app(tid, app_id)
        before = set(granted_permissions(app))
        configure_permissions(app, [p for p in request.form.getlist("permissions") if p in PERMISSIONS])
        waiting = [p for p in app["permissions"] if p not in before]
    return _back(tid, "Permissions saved." + (f" Grant admin consent for {', '.join(waiting)}." if waiting else ""))


@ui_bp.post("/<tid>/users/<uid>/teams-presence")
def set_teams(tid: str, uid: str) -> Response:
    availability = request.form.get("availability", "")
    if availability not in AVAILABILITIES:
        return _render(tid, error=f"Unknown Teams availability {availability!r}.", status=400)
    with store().lock:
        tenant = store().tenant(tid)
        set_client_presence(tenant, tenant.users[uid]["id"], availability, availability)
    return _back(tid, "Teams presence set.")


@ui_bp.post("/<tid>/apps/<app_id>/consent")
def grant(tid: str, app_id: str) -> Response:
    with store().lock:
        grant_admin_consent(_app(tid, app_id))
    return _back(tid, "Admin consent granted.")
