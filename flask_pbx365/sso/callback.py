"""Finishing a sign-in at the OAuth callback: replay checks, token validation, matching, the host's session."""
from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from flask import current_app, redirect, session
from werkzeug.wrappers import Response

from ..exceptions import PBX365Error, SignInError
from ..oauth import STATE_TTL
from ..oauth import error_page as oauth_error_page
from ..redirects import record_verified
from ..state import get_state
from ..tenants import find_config
from .flow import verified_identity_claims
from .matching import Identity, refusal, resolve_user
from .safety import put_once, safe_next, use_once

#: Session key remembering that the browser signed in with Microsoft (for sign-out).
SSO_SESSION_KEY = "_pbx365_sso"
_USER_REFUSALS = ("unlinked_user", "disabled_user", "not_allowed")


def error_page(error: PBX365Error):
    """The page a refused or failed sign-in shows: why, and what the administrator must do."""
    status = getattr(error, "status", 0) or 400
    refused = isinstance(error, SignInError) and error.code in _USER_REFUSALS
    title = "You cannot sign in with this Microsoft account" if refused else "Sign in with Microsoft failed"
    hint = error.hint if isinstance(error, SignInError) else None
    if hint and refused:
        hint = f"Ask your PBX administrator to do this: {hint}"
    return oauth_error_page(title, str(error), status, hint=hint)


def finish_sign_in(data: dict, params: Any) -> Response | tuple[str, int]:
    """The callback's handling of a ``sign_in`` state: sign the user in to the host, or hand the app its code."""
    tenant, target = data["tenant"], data["target"]
    try:
        if not use_once("state", params.get("state") or "", STATE_TTL):
            raise refusal("state_replayed", "This sign-in response was already used.",
                          "Start again from the login page.", 400)
        claims = verified_identity_claims(tenant, data, params)
        identity = Identity.from_claims(claims)
        user = resolve_user(tenant, identity, target)
        _remember_verified_uri(tenant, data["redirect_uri"])
    except PBX365Error as exc:
        current_app.logger.warning("Microsoft sign-in to tenant %s (%s) refused: %s", tenant, target, exc)
        if target == "app" and data.get("app"):
            return _to_app(data["app"], {"error": "access_denied",
                                         "error_description": f"{exc} {exc.hint or ''}".strip()
                                         if isinstance(exc, SignInError) else str(exc)})
        return error_page(exc)
    if target == "app":
        return _app_code(tenant, user.id, identity, data["app"])
    response = get_state().host.login_user(tenant, user.id, target)
    session[SSO_SESSION_KEY] = {"tenant": tenant, "target": target}
    return _apply_next(response, data.get("next"))


def _remember_verified_uri(tenant: str, uri: str) -> None:
    """Note the redirect URI as working, so the Configure tab can warn when a domain changes later."""
    config = find_config(tenant)
    if config is not None:
        verified = record_verified(tenant, config.verified_redirect_uris, uri)
        if verified != config.verified_redirect_uris:
            config.verified_redirect_uris = verified
            get_state().db.session.commit()


def _apply_next(response: Response, next_path: str | None) -> Response:
    """Send the user to the page they came for, when it is a local path and the host's sign-in succeeded.

    The host's ``login_user`` returns its landing redirect; when it refused (not an admin, disabled), it flashes an
    error and redirects back to its login page — that answer is kept as it is.
    """
    next_path = safe_next(next_path)
    flashes = session.get("_flashes") or []
    refused = any(category in ("error", "danger", "warning") for category, _ in flashes)
    if next_path and 300 <= response.status_code < 400 and not refused:
        return redirect(next_path)
    return response


def _to_app(app: dict, params: dict) -> Response:
    params = {**params, "state": app.get("state")}
    uri = app["redirect_uri"]
    sep = "&" if "?" in uri else "?"
    return redirect(uri + sep + urlencode({k: v for k, v in params.items() if v is not None}), code=302)


def _app_code(tenant: str, user_id: str, identity: Identity, app: dict) -> Response:
    """A one-time code for the app, returned to its allow-listed redirect URI."""
    code = secrets.token_urlsafe(32)
    put_once("app_code", code, {"tenant": tenant, "user_id": user_id, "tid": identity.directory_id,
                                "oid": identity.object_id, "challenge": app["challenge"],
                                "redirect_uri": app["redirect_uri"]},
             int(current_app.config["PBX365_SSO_APP_CODE_TTL"]))
    return _to_app(app, {"code": code})
