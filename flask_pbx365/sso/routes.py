"""Public routes of Sign in with Microsoft, on the extension's public blueprint (``PBX365_URL_PREFIX``).

- ``GET  /sign-in/<tenant>/<admin|web>[?next=/path]`` — the button's target: off to Microsoft.
- ``GET  /app/authorize?tenant=&redirect_uri=&code_challenge=&code_challenge_method=S256&state=`` — native apps.
- ``POST /app/token`` (``grant_type=authorization_code``, ``code``, ``code_verifier``, ``redirect_uri``) — native apps.
- ``POST /sign-out/<tenant>`` (``csrf_token``, optional ``microsoft=1``, ``next``) — ends the PBX session and,
  optionally, Microsoft's (``end_session_endpoint``).

The OAuth callback itself is :func:`flask_pbx365.views.public.oauth_callback`, which hands ``sign_in`` states to
:func:`flask_pbx365.sso.callback.finish_sign_in`. The routes are recorded in :data:`routes`; the SSO feature
puts them on the public blueprint.
"""
from __future__ import annotations

from flask import abort, jsonify, redirect, request

from ..csrf import protect
from ..exceptions import PBX365Error, SignInError
from ..routing import Routes
from .app_flow import check_app_request, exchange
from .callback import error_page
from .flow import authorization_redirect
from .matching import check_target
from .sign_out import sign_out_response

routes = Routes()


@routes.get("/sign-in/<tenant>/<target>")
def sign_in_start(tenant: str, target: str):
    """Start Sign in with Microsoft for the admin portal or the web client."""
    if target not in ("admin", "web"):
        abort(404)
    try:
        check_target(tenant, target)
        return redirect(authorization_redirect(tenant, target, request.args.get("next")))
    except PBX365Error as exc:
        return error_page(exc)


@routes.get("/app/authorize")
def app_authorize():
    """The native app's entry point, opened in the system browser."""
    tenant = request.args.get("tenant") or ""
    try:
        check_target(tenant, "app")
        app_request = check_app_request(tenant, request.args)
        return redirect(authorization_redirect(tenant, "app", app_request=app_request))
    except PBX365Error as exc:
        return error_page(exc)


@routes.post("/app/token")
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


@routes.post("/sign-out/<tenant>")
def sign_out(tenant: str):
    """Clear the PBX session; with ``microsoft=1`` (or ``PBX365_SSO_SIGN_OUT_MICROSOFT``) also Microsoft's."""
    protect()
    return sign_out_response(tenant, request.form.get("next"), request.form.get("microsoft") == "1" or None)
