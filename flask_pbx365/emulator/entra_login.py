"""Entra's interactive pages: the sign-in page of ``/authorize``, admin consent, and sign-out.

The sign-in form uses Microsoft's own field names and element ids, so browser tests can drive it like the
real page: username ``<input name="loginfmt" id="i0116">``, password ``<input name="passwd" id="i0118">``,
submit ``<input type="submit" id="idSIButton9">``. The admin-consent page adds ``<input type="submit"
name="consent" value="accept">`` (and ``value="cancel"``). Signing in sets an SSO cookie (``ESTSAUTH``), so a
later ``/authorize`` without ``prompt=login`` skips the form; ``prompt=none`` without it answers
``login_required``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from urllib.parse import urlencode

from flask import Response, current_app, redirect, render_template_string, request, session
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .entra import (CODE_LIFETIME, OIDC_SCOPES, REFRESH_LIFETIME, AadError, app_for, entra_bp, tenant_for,
                    user_tokens)
from .fixtures import ADMIN_ROLE, grant_admin_consent
from .graph_common import store
from .store import Tenant

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:Segoe UI,Arial,sans-serif;background:#f2f2f2}main{background:#fff;width:440px;margin:60px auto;
padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}input[type=text],input[type=email],input[type=password]{width:100%;
padding:6px;margin:6px 0 14px}.err{color:#e81123}.btn{background:#0067b8;color:#fff;border:0;padding:8px 24px}
code{word-break:break-all}</style></head><body><main>
<div style="font-weight:600;color:#737373">Microsoft 365 Emulator</div><h1 style="font-size:24px">{{ title }}</h1>
{% if error %}<p class="err" id="passwordError">{{ error }}</p>{% endif %}
{% if message %}<p>{{ message }}</p>{% endif %}
{% if form %}<form method="post" action="{{ action }}">
{% for k, v in hidden.items() %}<input type="hidden" name="{{ k }}" value="{{ v }}">{% endfor %}
{% if ask_credentials %}
<label for="i0116">Email, phone, or Skype</label>
<input type="email" name="loginfmt" id="i0116" value="{{ login_hint }}" autocomplete="username">
<label for="i0118">Password</label>
<input type="password" name="passwd" id="i0118" autocomplete="current-password">{% endif %}
{% if permissions is not none %}<p><b>{{ app_name }}</b> ({{ app_id }}) asks for these application permissions in
<b>{{ tenant_name }}</b>:</p><ul>{% for p in permissions %}<li>{{ p }}</li>{% endfor %}</ul>
<input type="submit" class="btn" name="consent" value="accept" id="idSIButton9">
<input type="submit" name="consent" value="cancel" id="idBtn_Back">
{% else %}<input type="submit" class="btn" value="Sign in" id="idSIButton9">{% endif %}
</form>{% endif %}</main></body></html>"""

OAUTH_PARAMS = ("client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce", "prompt",
                "login_hint", "code_challenge", "code_challenge_method", "domain_hint", "client_info",
                "claims", "x-client-SKU", "x-client-Ver")


def page(title: str, *, status: int = 200, **ctx) -> Response:
    ctx.setdefault("form", False)
    ctx.setdefault("permissions", None)
    html = render_template_string(PAGE, title=title, error=ctx.pop("error", None),
                                  message=ctx.pop("message", None), **ctx)
    return Response(html, status=status, content_type="text/html; charset=utf-8")


def error_page(err: AadError) -> Response:
    return page("Sorry, but we're having trouble signing you in.", status=400,
                error=f"AADSTS{err.code}: {err.message}")


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["M365_TOKEN_SECRET"], salt="m365-refresh-token")


def mint_refresh_token(tenant: Tenant, app: dict, user: dict, scopes: list[str]) -> str:
    return _serializer().dumps({"t": tenant.id, "a": app["appId"], "u": user["id"], "s": scopes,
                                "n": secrets.token_hex(8)})


def _check_redirect_uri(app: dict, uri: str | None) -> str:
    if not uri:
        raise AadError(400, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'redirect_uri'.")
    if uri not in (app.get("redirectUris") or []):
        raise AadError(400, "invalid_request", 50011,
                       f"The redirect URI '{uri}' specified in the request does not match the redirect URIs "
                       f"configured for the application '{app['appId']}'. Make sure the redirect URI sent in the "
                       "request matches one added to your application in the Azure portal. Navigate to "
                       "https://aka.ms/redirectUriMismatchError to learn more about how to fix this.")
    return uri


def _respond(uri: str, mode: str, params: dict) -> Response:
    """Send ``params`` back to the client's redirect URI by query, fragment or auto-submitted form."""
    params = {k: v for k, v in params.items() if v is not None}
    if mode == "form_post":
        inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">'
                         for k, v in ((k, _esc(v)) for k, v in params.items()))
        html = (f'<html><head><title>Working...</title></head><body><form method="POST" name="hiddenform" '
                f'action="{_esc(uri)}">{inputs}<noscript><p>Script is disabled. Click Submit to continue.</p>'
                f'<input type="submit" value="Submit"></noscript></form>'
                f'<script>document.forms[0].submit();</script></body></html>')
        return Response(html, content_type="text/html; charset=utf-8")
    sep = "#" if mode == "fragment" else ("&" if "?" in uri else "?")
    return redirect(uri + sep + urlencode(params), code=302)


def _esc(value: str) -> str:
    return (str(value).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;"))


def _find_user(tenant: Tenant, login: str) -> dict | None:
    low = (login or "").strip().lower()
    return next((u for u in tenant.users.values() if not u.get("_deleted") and
                 ((u.get("userPrincipalName") or "").lower() == low or (u.get("mail") or "").lower() == low)),
                None)


def _password_login(tenant: Tenant) -> tuple[dict | None, str | None]:
    """(user, error) for the posted ``loginfmt``/``passwd``."""
    login, password = request.form.get("loginfmt", ""), request.form.get("passwd", "")
    user = _find_user(tenant, login)
    if user is None:
        return None, (f"AADSTS50034: The user account {login} does not exist in the {tenant.display_name} "
                      "directory. To sign into this application, the account must be added to the directory.")
    if not user.get("_password") or not hmac.compare_digest(str(user["_password"]), password):
        return None, "AADSTS50126: Error validating credentials due to invalid username or password."
    if not user.get("accountEnabled", True):
        return None, "AADSTS50057: The user account is disabled."
    session.setdefault("sso", {})
    session["sso"] = {**session["sso"], tenant.id: user["id"]}
    return user, None


def _sso_user(tenant: Tenant) -> dict | None:
    uid = (session.get("sso") or {}).get(tenant.id)
    user = tenant.users.get(uid or "")
    if user is None or user.get("_deleted") or not user.get("accountEnabled", True):
        return None
    return user


@entra_bp.route("/<tenant_key>/oauth2/v2.0/authorize", methods=["GET", "POST"])
def authorize(tenant_key: str) -> Response:
    """Authorization endpoint: sign-in page, then a code sent to the registered redirect URI."""
    params = {k: request.values[k] for k in OAUTH_PARAMS if k in request.values}
    try:
        tenant = tenant_for(tenant_key)
        with store().lock:
            app = app_for(tenant, params.get("client_id"))
            uri = _check_redirect_uri(app, params.get("redirect_uri"))
    except AadError as err:
        return error_page(err)
    mode = params.get("response_mode") or "query"
    state = params.get("state")
    if "code" not in (params.get("response_type") or "").split():
        return _respond(uri, mode, {"error": "unsupported_response_type", "state": state,
                                    "error_description": "AADSTS700054: response_type 'code' is required."})
    scopes = (params.get("scope") or "openid").split()
    wants_more = [s for s in scopes if s not in OIDC_SCOPES and s.rsplit("/", 1)[-1] not in ("User.Read", ".default")]
    if wants_more and not app.get("adminConsent"):
        return _respond(uri, mode, {
            "error": "consent_required", "state": state,
            "error_description": f"AADSTS65001: The user or administrator has not consented to use the application "
                                 f"with ID '{app['appId']}' named '{app.get('displayName')}'. Send an interactive "
                                 "authorization request for this user and resource."})
    method = params.get("code_challenge_method") or ("plain" if params.get("code_challenge") else None)
    if method not in (None, "plain", "S256"):
        return _respond(uri, mode, {"error": "invalid_request", "state": state,
                                    "error_description": "AADSTS501491: Invalid code_challenge_method."})
    prompt = params.get("prompt")
    user, error = None, None
    with store().lock:
        if request.method == "POST" and "loginfmt" in request.form:
            user, error = _password_login(tenant)
        elif prompt not in ("login", "select_account", "consent"):
            user = _sso_user(tenant)
            hint = (params.get("login_hint") or "").lower()
            if user and hint and hint != (user.get("userPrincipalName") or "").lower():
                user = None
    if user is None:
        if prompt == "none":
            return _respond(uri, mode, {"error": "login_required", "state": state,
                                        "error_description": "AADSTS50058: A silent sign-in request was sent but "
                                                             "no user is signed in."})
        hidden = {k: v for k, v in params.items() if k != "prompt"}
        return page("Sign in", form=True, action=request.path, hidden=hidden, ask_credentials=True,
                    login_hint=request.form.get("loginfmt") or params.get("login_hint", ""), error=error)
    code = secrets.token_urlsafe(48)
    codes = current_app.extensions.setdefault("m365_codes", {})
    with store().lock:
        now = time.time()
        for c in [c for c, v in codes.items() if v["expires"] < now - 3600]:
            del codes[c]
        codes[code] = {"tenant": tenant.id, "app": app["appId"], "redirect_uri": uri, "user": user["id"],
                       "scopes": scopes, "nonce": params.get("nonce"), "challenge": params.get("code_challenge"),
                       "method": method, "expires": now + CODE_LIFETIME, "used": False}
    return _respond(uri, mode, {"code": code, "state": state, "session_state": secrets.token_hex(16)})


def redeem_code(tenant: Tenant, app: dict) -> Response:
    """``grant_type=authorization_code``: one-time code, same client and redirect URI, PKCE verified."""
    form = request.form
    entry = current_app.extensions.setdefault("m365_codes", {}).get(form.get("code") or "")
    if entry is None or entry["tenant"] != tenant.id or entry["app"] != app["appId"]:
        raise AadError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
    if entry["used"]:
        raise AadError(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please "
                       "retry with a new valid code or use an existing refresh token.")
    if entry["expires"] < time.time():
        raise AadError(400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired "
                       "due to inactivity. Send a new interactive authorization request for this user and resource.")
    if form.get("redirect_uri") != entry["redirect_uri"]:
        raise AadError(400, "invalid_grant", 50011, f"The redirect URI '{form.get('redirect_uri')}' specified in "
                       "the request does not match the redirect URI used in the authorization request.")
    if entry["challenge"]:
        verifier = form.get("code_verifier") or ""
        if entry["method"] == "S256":
            computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        else:
            computed = verifier
        if not verifier or not hmac.compare_digest(computed, entry["challenge"]):
            raise AadError(400, "invalid_grant", 501481,
                           "The Code_Verifier does not match the code_challenge supplied in the authorization "
                           "request.")
    entry["used"] = True
    user = tenant.users.get(entry["user"])
    if user is None or user.get("_deleted"):
        raise AadError(400, "invalid_grant", 50034, "The user account does not exist in the directory.")
    return user_tokens(tenant, app, user, entry["scopes"], entry["nonce"])


def redeem_refresh_token(tenant: Tenant, app: dict) -> Response:
    """``grant_type=refresh_token``: a token minted for this tenant, app and a still active user."""
    try:
        data = _serializer().loads(request.form.get("refresh_token") or "", max_age=REFRESH_LIFETIME)
    except BadSignature as exc:
        raise AadError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.") from exc
    if data["t"] != tenant.id or data["a"] != app["appId"]:
        raise AadError(400, "invalid_grant", 700005, "Provided Authorization Code is intended to use against "
                       "other tenant or application, thus rejected.")
    user = tenant.users.get(data["u"])
    if user is None or user.get("_deleted") or not user.get("accountEnabled", True):
        raise AadError(400, "invalid_grant", 50057, "The user account is disabled or was deleted.")
    scopes = request.form.get("scope", "").split() or data["s"]
    if "offline_access" in data["s"] and "offline_access" not in scopes:
        scopes.append("offline_access")
    return user_tokens(tenant, app, user, scopes, None)


@entra_bp.route("/<tenant_key>/adminconsent", methods=["GET", "POST"])
@entra_bp.route("/<tenant_key>/v2.0/adminconsent", methods=["GET", "POST"])
def admin_consent(tenant_key: str) -> Response:
    """Admin consent: a Global Administrator signs in and grants the app's application permissions."""
    params = {k: request.values[k] for k in ("client_id", "redirect_uri", "state", "scope") if k in request.values}
    try:
        tenant = tenant_for(tenant_key)
        with store().lock:
            app = app_for(tenant, params.get("client_id"))
            uri = _check_redirect_uri(app, params.get("redirect_uri"))
    except AadError as err:
        return error_page(err)
    state = params.get("state")
    error = None
    with store().lock:
        user = _sso_user(tenant)
        if request.method == "POST":
            if "loginfmt" in request.form and request.form.get("loginfmt"):
                user, error = _password_login(tenant)
            if request.form.get("consent") == "cancel":
                return _respond(uri, "query", {"error": "access_denied", "state": state,
                                               "error_description": "AADSTS65004: User declined to consent to "
                                                                    "access the app."})
            if user is not None and ADMIN_ROLE not in (user.get("_roles") or []):
                error, user = ("AADSTS90094: The grant requires admin permission. Sign in with a Global "
                               "Administrator of the tenant."), None
            if user is not None and request.form.get("consent") == "accept":
                grant_admin_consent(app)
                return _respond(uri, "query", {"admin_consent": "True", "tenant": tenant.id, "state": state,
                                               "scope": params.get("scope")})
    return page("Permissions requested", form=True, action=request.path, hidden=params,
                ask_credentials=user is None, login_hint="", error=error,
                permissions=list(app.get("permissions") or []), app_name=app.get("displayName"),
                app_id=app["appId"], tenant_name=tenant.display_name)


@entra_bp.route("/<tenant_key>/oauth2/v2.0/logout", methods=["GET", "POST"])
def logout(tenant_key: str) -> Response:
    """End-session endpoint: forgets the SSO session, then returns to ``post_logout_redirect_uri``."""
    try:
        tenant = tenant_for(tenant_key)
    except AadError as err:
        return error_page(err)
    sso = dict(session.get("sso") or {})
    sso.pop(tenant.id, None)
    session["sso"] = sso
    target = request.values.get("post_logout_redirect_uri")
    if target:
        return redirect(target, code=302)
    return page("You signed out of your account", message="It's a good idea to close all browser windows.")
