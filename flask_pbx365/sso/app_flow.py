"""Sign-in for the PBX's native apps (PortSIP ONE / 3CX app style), after RFC 8252 "OAuth for native apps".

1. The app opens the system browser at ``/app/authorize`` with its allow-listed ``redirect_uri`` (a custom scheme
   such as ``myapp://auth``, or a loopback ``http://127.0.0.1:PORT/...``), its own PKCE ``code_challenge`` (S256)
   and ``state``. The browser then signs in with Microsoft as on the web.
2. The portal sends a one-time code (valid ``PBX365_SSO_APP_CODE_TTL`` seconds) to that redirect URI.
3. The app POSTs the code with its PKCE ``code_verifier`` to ``/app/token`` and receives the host's app session
   token (:meth:`~flask_pbx365.host.PBXHost.issue_app_token`).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from urllib.parse import urlsplit

from ..exceptions import PBX365Error, SignInError
from ..settings import get_settings
from ..state import get_state
from .matching import Identity, refusal, resolve_user
from .safety import take_once

_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def _is_loopback(host: str | None) -> bool:
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_app_redirect(tenant: str, uri: str | None) -> bool:
    """Whether ``uri`` is one of the Sign In tab's app redirect URIs.

    Exact match, except that a loopback IP URI (``http://127.0.0.1/cb``, ``http://[::1]/cb``) matches on any
    port, as RFC 8252 section 7.3 requires (the app picks a free port each time).
    """
    if not uri or len(uri) > 2000 or re.search(r"[\s#]", uri):
        return False
    allowed = get_settings(tenant)["sign_in"]["app_redirect_uris"]
    if uri in allowed:
        return True
    parts = urlsplit(uri)
    if parts.scheme != "http" or not _is_loopback(parts.hostname):
        return False
    for entry in allowed:
        candidate = urlsplit(entry)
        if (candidate.scheme == "http" and candidate.hostname == parts.hostname and candidate.path == parts.path
                and candidate.query == parts.query):
            return True
    return False


def check_app_request(tenant: str, args) -> dict:
    """The app's validated request (``redirect_uri``, ``challenge``, ``state``), or :class:`SignInError`.

    Nothing is sent to a redirect URI that is not allow-listed: such errors are shown in the browser.
    """
    uri = args.get("redirect_uri")
    if not allowed_app_redirect(tenant, uri):
        raise refusal("invalid_redirect_uri", f"The app's redirect URI {uri!r} is not allowed for this "
                      "organization.", "Add it under Integrations > Microsoft 365 > Sign In > App redirect URIs.",
                      400)
    challenge = args.get("code_challenge") or ""
    if args.get("code_challenge_method") != "S256" or not _CHALLENGE.fullmatch(challenge):
        raise refusal("invalid_request", "The app must send a PKCE code_challenge with code_challenge_method=S256.",
                      "Update the app.", 400)
    return {"redirect_uri": uri, "challenge": challenge, "state": args.get("state")}


def exchange(form) -> dict:
    """The token answer for the app's ``POST /app/token``: the host's app session token plus ``tenant``.

    Raises :class:`SignInError` whose ``code`` is the OAuth error (``invalid_grant``...).
    """
    if form.get("grant_type") != "authorization_code":
        raise SignInError("grant_type must be authorization_code.", code="unsupported_grant_type",
                          status=400)
    verifier = form.get("code_verifier") or ""
    if not _VERIFIER.fullmatch(verifier):
        raise SignInError("code_verifier is missing or malformed (43-128 characters, RFC 7636).",
                          code="invalid_request", status=400)
    data = take_once("app_code", form.get("code") or "")
    if data is None:
        raise SignInError("The code is unknown, expired or already used: sign in again.",
                          code="invalid_grant", status=400)
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    if not hmac.compare_digest(computed, data["challenge"]):
        raise SignInError("code_verifier does not match the code_challenge of this sign-in.",
                          code="invalid_grant", status=400)
    if form.get("redirect_uri") != data["redirect_uri"]:
        raise SignInError("redirect_uri differs from the one of this sign-in.", code="invalid_grant",
                          status=400)
    tenant = data["tenant"]
    try:
        # The user may have been disabled or unlinked in the seconds since the browser leg.
        user = resolve_user(tenant, Identity(data["tid"], data["oid"]), "app")
        if user.id != data["user_id"]:
            raise SignInError("The user's link changed during sign-in: sign in again.", code="invalid_grant",
                              status=400)
        token = get_state().host.issue_app_token(tenant, user.id)
    except SignInError as exc:
        if exc.code not in ("invalid_grant", "invalid_request"):
            raise SignInError(str(exc), code="access_denied", status=403, hint=exc.hint) from exc
        raise
    except PBX365Error as exc:
        raise SignInError(str(exc), code="access_denied", status=403) from exc
    return {**token, "tenant": tenant}
