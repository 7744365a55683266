"""Signing out: the PBX session, and optionally Microsoft's (the tenant's ``end_session_endpoint``)."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import current_app, redirect, session
from werkzeug.wrappers import Response

from ..exceptions import PBX365Error
from ..oauth import AFTER_SIGN_OUT_KEY
from .flow import provider_for
from .proxy import matching_base, public_bases, redirect_uri_for
from .safety import safe_next


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
