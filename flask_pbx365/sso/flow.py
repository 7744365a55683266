"""The browser leg of Sign in with Microsoft: OIDC authorization code flow with PKCE (S256), state and nonce.

Start: the user's browser goes to the tenant's own authority with a one-time ``state`` (kept in the session by
:func:`~flask_pbx365.views.public.remember_state` and marked used in Redis, so neither a second callback nor a
replayed session cookie can reuse it), a ``nonce`` and a PKCE challenge. Finish: the code is redeemed by the portal
(a confidential client) with a ``private_key_jwt`` assertion signed by the tenant's certificate (PS256,
``x5t#S256``) — no client secret — then the ID token is validated and the user matched by (``tid``, ``oid``).
"""
from __future__ import annotations

import base64
import re
import secrets
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from flask import current_app, request
from joserfc.jwk import RSAKey

from ..connection import credentials_for
from ..exceptions import SignInError
from ..graph.credentials import AppCredentials
from ..graph.transport import connection_error, timeouts, trust_store
from ..oauth import remember_state
from ..tenants import cloud_of, require_connection
from .matching import refusal
from .oidc import Provider
from .proxy import matching_base, public_bases, redirect_uri_for, request_origin
from .safety import safe_next

SCOPES = "openid profile"


def provider_for(tenant: str) -> Provider:
    """The tenant's OpenID provider (its own authority in its cloud)."""
    config = require_connection(tenant)
    return Provider(cloud_of(config), config.directory_id, timeout=float(current_app.config["PBX365_HTTP_TIMEOUT"]))


def authorization_redirect(tenant: str, target: str, next_path: str | None = None,
                           app_request: dict | None = None) -> str:
    """The URL that sends the browser to Microsoft for ``target`` (``admin``, ``web`` or ``app``).

    The redirect URI is the one of the domain the browser came through (portal or SBC). A request that came
    through any other host name is refused rather than redirected, so a Host header never becomes a URI.
    """
    base = matching_base(tenant)
    if base is None:
        bases = public_bases(tenant)
        start = bases[0] + request.full_path.rstrip("?") if bases else ""
        raise refusal("unknown_domain",
                      f"This portal was reached as {request_origin()}, which is not one of its public addresses "
                      f"({', '.join(bases)}).",
                      f"Open the sign-in page at {start}. If a reverse proxy (SBC) forwards to the portal, add its "
                      "IP address to PBX365_TRUSTED_PROXIES and its public URL to the PBX's settings.", 400)
    redirect_uri = redirect_uri_for(base, tenant)
    config = require_connection(tenant)
    provider = provider_for(tenant)
    verifier = secrets.token_urlsafe(64)
    nonce = secrets.token_urlsafe(24)
    state = remember_state("sign_in", tenant, redirect_uri, target=target, next=safe_next(next_path),
                           nonce=nonce, verifier=verifier, app=app_request)
    with OAuth2Session(config.client_id, code_challenge_method="S256", scope=SCOPES,
                       redirect_uri=redirect_uri) as client:
        url, _ = client.create_authorization_url(provider.metadata["authorization_endpoint"], state=state,
                                                 code_verifier=verifier, nonce=nonce, response_mode="query")
    return url


def _x5t_s256(credentials: AppCredentials) -> str:
    digest = bytes.fromhex(credentials.sha256_thumbprint)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def redeem_code(provider: Provider, credentials: AppCredentials, *, code: str, redirect_uri: str,
                verifier: str) -> dict[str, Any]:
    """Exchange the authorization ``code`` (with the PKCE ``verifier``) for tokens at the tenant's token
    endpoint, authenticating with the certificate. Raises :class:`SignInError` with Entra's AADSTS code."""
    token_endpoint = provider.metadata["token_endpoint"]
    auth = PrivateKeyJWT(token_endpoint, headers={"x5t#S256": _x5t_s256(credentials)}, alg="PS256")
    key = RSAKey.import_key(credentials.private_key_pem)
    verify = trust_store(provider.cloud)
    with OAuth2Session(credentials.client_id, key, token_endpoint_auth_method=auth,
                       code_challenge_method="S256") as client:
        try:
            # Entra wants client_id in the body next to the assertion.
            token = client.fetch_token(token_endpoint, grant_type="authorization_code", code=code,
                                       client_id=credentials.client_id,
                                       redirect_uri=redirect_uri, code_verifier=verifier, scope=SCOPES,
                                       verify=verify, timeout=timeouts(provider.timeout))
        except OAuthError as exc:
            raise entra_error(exc.error or "error", exc.description or "", redirect_uri) from exc
        except requests.RequestException as exc:
            raise connection_error(exc, "POST", token_endpoint, verify) from exc
        except ValueError as exc:
            raise SignInError(f"The token endpoint {token_endpoint} did not answer with tokens.",
                              code="provider_unavailable", status=502) from exc
    if not token.get("id_token"):
        raise SignInError("Microsoft answered without an ID token: the request must include the openid scope.",
                          code="invalid_id_token", status=502)
    return dict(token)


_AADSTS_HINTS = {
    "50011": "Add this exact redirect URI in Entra > App registrations > your app > Authentication (platform Web): "
             "{redirect_uri}",
    "54005": "The sign-in response was already used. Start again from the login page.",
    "70008": "The sign-in took too long. Start again from the login page.",
    "501481": "The sign-in response does not belong to this browser's sign-in. Start again from the login page.",
    "700027": "Upload the Configure tab's public_key.pem in Entra > App registrations > your app > Certificates & "
              "secrets, or activate the key pair whose certificate Entra has.",
    "7000222": "The certificate expired: generate a new key pair on the Configure tab and upload it to Entra.",
    "700016": "Check the application (client) ID and directory (tenant) ID on the Configure tab.",
    "65001": "Grant admin consent for the app (Configure tab > Grant admin consent).",
    "50105": "Assign the user to the app in Entra > Enterprise applications > your app > Users and groups, or "
             "set 'Assignment required' to No.",
    "53003": "A Conditional Access policy blocked the sign-in; check the user's sign-in logs in Entra.",
}


def entra_error(error: str, description: str, redirect_uri: str) -> SignInError:
    """A :class:`SignInError` for an error Microsoft answered, with what to do about it."""
    match = re.search(r"AADSTS(\d+)", description or "")
    code = match.group(1) if match else None
    first_line = (description or error).strip().splitlines()[0][:400] if (description or error) else error
    if error == "access_denied" and not code:
        hint = "Sign-in was cancelled or denied in Microsoft's page. Start again to retry."
    else:
        hint = _AADSTS_HINTS.get(code or "", "Start again from the login page; if it keeps failing, show this "
                                              "message to the PBX administrator.")
    return SignInError(f"Microsoft refused the sign-in: {first_line}", aadsts=code,
                       code=f"AADSTS{code}" if code else error, status=400,
                       hint=hint.format(redirect_uri=redirect_uri), redirect_uri=redirect_uri)


def verified_identity_claims(tenant: str, data: dict, params: Any) -> dict:
    """The validated ID-token claims for the callback ``params`` of the sign-in remembered as ``data``."""
    if params.get("error"):
        raise entra_error(params["error"], params.get("error_description") or "", data["redirect_uri"])
    code = params.get("code")
    if not code:
        raise SignInError("Microsoft's answer has no authorization code.", code="invalid_request", status=400,
                          hint="Start again from the login page.")
    credentials = credentials_for(tenant)
    provider = provider_for(tenant)
    tokens = redeem_code(provider, credentials, code=code, redirect_uri=data["redirect_uri"],
                         verifier=data["verifier"])
    return provider.validate_id_token(tokens["id_token"], client_id=credentials.client_id, nonce=data["nonce"],
                                      leeway=int(current_app.config["PBX365_SSO_CLOCK_SKEW"]))
