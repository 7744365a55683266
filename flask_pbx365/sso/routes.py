"""Public routes of Sign in with Microsoft, on the extension's public blueprint (``PBX365_URL_PREFIX``).

- ``GET  /sign-in/<tenant>/<admin|web>[?next=/path]`` — the button's target: off to Microsoft.
- ``GET  /app/authorize?tenant=&redirect_uri=&code_challenge=&code_challenge_method=S256&state=`` — native apps.
- ``POST /app/token`` (``grant_type=authorization_code``, ``code``, ``code_verifier``, ``redirect_uri``) — native apps.
- ``POST /sign-out/<tenant>`` (``csrf_token``, optional ``microsoft=1``, ``next``) — ends the PBX session and,
  optionally, Microsoft's (``end_session_endpoint``).

The OAuth callback itself is :func:`flask_pbx365.views.public.oauth_callback`, which hands ``sign_in`` states to
:func:`flask_pbx365.sso.callback.finish_sign_in`.
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import abort, current_app, jsonify, redirect, request, session
from werkzeug.wrappers import Response

from ..csrf import protect
from ..exceptions import PBX365Error, SignInError
from ..views.public import public_bp
from .app_flow import check_app_request, exchange
from .callback import error_page
from .flow import authorization_redirect, provider_for
from .matching import check_target
from .proxy import matching_base, public_bases, redirect_uri_for
from .safety import safe_next

#: Session key of the local path to land on when Microsoft's sign-out returns to the OAuth callback.
AFTER_SIGN_OUT_KEY = "_pbx365_after_sign_out"


@public_bp.get("/sign-in/<tenant>/<target>")
def sign_in_start(tenant: str, target: str):
    """Start Sign in with Microsoft for the admin portal or the web client."""
    if target not in ("admin", "web"):
        abort(404)
    try:
        check_target(tenant, target)
        return redirect(authorization_redirect(tenant, target, request.args.get("next")))
    except PBX365Error as exc:
        return error_page(exc)


@public_bp.get("/app/authorize")
def app_authorize():
    """The native app's entry point, opened in the system browser."""
    tenant = request.args.get("tenant") or ""
    try:
        check_target(tenant, "app")
        app_request = check_app_request(tenant, request.args)
        return redirect(authorization_redirect(tenant, "app", app_request=app_request))
    except PBX365Error as exc:
        return error_page(exc)


@public_bp.post("/app/token")
def app_token():
    """The app's code exchange: one-time code + PKCE verifier for the host's app session token (JSON)."""
    try:
        answer = exchange(request.form if request.form else (request.get_json(silent=True) or {}))
    except SignInError as exc:
        response = jsonify({"error": exc.code or "invalid_request", "error_description": str(exc)})
        response.status_code = exc.status or 400
    except PBX365Error as exc:
        response = jsonify({"error": "server_error", "error_description": str(exc)})
        response.status_code = 503
    else:
        response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@public_bp.post("/sign-out/<tenant>")
def sign_out(tenant: str):
    """Clear the PBX session; with ``microsoft=1`` (or ``PBX365_SSO_SIGN_OUT_MICROSOFT``) also Microsoft's."""
    protect()
    return sign_out_response(tenant, request.form.get("next"), request.form.get("microsoft") == "1" or None)


def sign_out_response(tenant: str, return_to: str | None = None, microsoft: bool | None = None) -> Response:
    """End the PBX session (the whole Flask session) and return to ``return_to`` (a local path, default ``/``).

    With ``microsoft`` (default: ``PBX365_SSO_SIGN_OUT_MICROSOFT``), and when this browser signed in with
    Microsoft, the browser first visits the tenant's ``end_session_endpoint`` to end its Microsoft session too.
    Microsoft only returns to a registered redirect URI, so its ``post_logout_redirect_uri`` is this domain's
    OAuth callback, which then sends the browser on to ``return_to``. Hosts may call this from their own logout
    view.
    """
    if microsoft is None:
        microsoft = bool(current_app.config["PBX365_SSO_SIGN_OUT_MICROSOFT"])
    signed_in_with_microsoft = (session.get("_pbx365_sso") or {}).get("tenant") == tenant
    session.clear()
    target = safe_next(return_to) or "/"
    if not (microsoft and signed_in_with_microsoft):
        return redirect(target)
    try:
        endpoint = provider_for(tenant).metadata.get("end_session_endpoint")
    except PBX365Error as exc:
        current_app.logger.warning("Microsoft sign-out skipped for tenant %s: %s", tenant, exc)
        endpoint = None
    base = matching_base(tenant) or (public_bases(tenant) or [""])[0]
    if not endpoint or not base:
        return redirect(target)
    session[AFTER_SIGN_OUT_KEY] = target
    return redirect(f"{endpoint}?{urlencode({'post_logout_redirect_uri': redirect_uri_for(base, tenant)})}")
