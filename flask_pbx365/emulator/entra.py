"""Entra ID (v2.0 endpoints) of the emulator: OpenID discovery, JWKS and the token endpoint.

Served at ``B/{tenant}/...`` where ``{tenant}`` is the tenant GUID or one of its verified domains. Error
answers use Entra's JSON shape ``{"error", "error_description": "AADSTSnnnn: ...", "error_codes", "timestamp",
"trace_id", "correlation_id", "error_uri"}``. Sign-in pages are in :mod:`.entra_login`.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from datetime import datetime, timezone

from flask import Blueprint, Response, current_app, jsonify, request

from .entra_certs import AadError, verify_client_assertion
from .fixtures import granted_permissions
from .graph_common import GRAPH_APP_ID, GRAPH_RESOURCES, base_url, store
from .store import Tenant, UnknownTenant

entra_bp = Blueprint("m365_entra", __name__)

TOKEN_LIFETIME = 3599
CODE_LIFETIME = 600
REFRESH_LIFETIME = 90 * 86400
OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}
STS_ISSUERS = {"global": "https://sts.windows.net/{tid}/", "usgov": "https://login.microsoftonline.us/{tid}/",
               "usgov-dod": "https://login.microsoftonline.us/{tid}/",
               "china": "https://sts.chinacloudapi.cn/{tid}/"}
CLOUD_INSTANCE_NAMES = {"global": "microsoftonline.com", "usgov": "microsoftonline.us",
                        "usgov-dod": "microsoftonline.us", "china": "partner.microsoftonline.cn"}


# --- helpers -------------------------------------------------------------------------------------------------


def aad_error_response(err: AadError) -> Response:
    """Entra's JSON error body for ``err``."""
    trace = str(uuid.uuid4())
    corr = request.headers.get("client-request-id") or str(uuid.uuid4())
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    body = {"error": err.error,
            "error_description": f"AADSTS{err.code}: {err.message} Trace ID: {trace} Correlation ID: {corr} "
                                 f"Timestamp: {ts}",
            "error_codes": [err.code], "timestamp": ts, "trace_id": trace, "correlation_id": corr,
            "error_uri": f"{base_url()}/error?code={err.code}"}
    resp = jsonify(body)
    resp.status_code = err.status
    resp.headers["Cache-Control"] = "no-store, no-cache"
    return resp


@entra_bp.errorhandler(AadError)
def _on_aad_error(err: AadError) -> Response:
    return aad_error_response(err)


def tenant_for(key: str) -> Tenant:
    """The tenant named by the path segment; AADSTS90002 otherwise (and notes it for the request log)."""
    try:
        tenant = store().tenant(key)
    except UnknownTenant as exc:
        raise AadError(400, "invalid_request", 90002,
                       f"Tenant '{key}' not found. Check to make sure you have the correct tenant ID and are "
                       "signing into the correct cloud. Check with your subscription administrator, this may "
                       "happen if there are no active subscriptions for the tenant.") from exc
    request.environ["m365.tenant_id"] = tenant.id
    return tenant


def app_for(tenant: Tenant, client_id: str | None) -> dict:
    """The tenant's application ``client_id``; AADSTS900144 when missing, 700016 when unknown."""
    if not client_id:
        raise AadError(400, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'client_id'.")
    request.environ["m365.app_id"] = client_id
    app = tenant.applications.get(client_id.lower())
    if app is None:
        raise AadError(400, "unauthorized_client", 700016,
                       f"Application with identifier '{client_id}' was not found in the directory "
                       f"'{tenant.display_name}'. This can happen if the application has not been installed by "
                       "the administrator of the tenant or consented to by any user in the tenant. You may have "
                       "sent your authentication request to the wrong tenant.")
    return app


def roots() -> set[str]:
    """Every base URL this emulator is reached by (configured base URL and the request's host)."""
    return {base_url(), request.url_root.rstrip("/")}


def graph_resources(tenant: Tenant) -> set[str]:
    """Resource identifiers accepted for Microsoft Graph: the cloud's Graph URL, Graph's app id, ``B``."""
    return {GRAPH_RESOURCES[tenant.cloud], GRAPH_APP_ID, *roots()}


def sts_issuer(tenant: Tenant) -> str:
    return STS_ISSUERS[tenant.cloud].format(tid=tenant.id)


def v2_issuer(tenant: Tenant) -> str:
    return f"{base_url()}/{tenant.id}/v2.0"


def pairwise_sub(oid: str, app_id: str) -> str:
    """The ID token's ``sub``: stable per user and app, different across apps (as Entra's pairwise subject)."""
    digest = hashlib.sha256(f"{oid}:{app_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:32]).rstrip(b"=").decode()


def _sign(claims: dict) -> str:
    return current_app.extensions["m365_keys"].sign(claims)


# --- discovery -----------------------------------------------------------------------------------------------


def _discovery(tenant: Tenant) -> dict:
    b, tid = base_url(), tenant.id
    return {
        "token_endpoint": f"{b}/{tid}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{b}/{tid}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": v2_issuer(tenant),
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{b}/oidc/userinfo",
        "authorization_endpoint": f"{b}/{tid}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{b}/{tid}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{b}/{tid}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
                             "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
                             "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": f"{b}/{tid}/kerberos",
        "tenant_region_scope": "NA",
        "cloud_instance_name": CLOUD_INSTANCE_NAMES[tenant.cloud],
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": b.split("://", 1)[-1],
        "rbac_url": "https://pas.windows.net",
    }


@entra_bp.get("/<tenant_key>/v2.0/.well-known/openid-configuration")
def openid_configuration(tenant_key: str) -> Response:
    return jsonify(_discovery(tenant_for(tenant_key)))


@entra_bp.get("/<tenant_key>/discovery/v2.0/keys")
@entra_bp.get("/<tenant_key>/discovery/keys")
def jwks(tenant_key: str) -> Response:
    if tenant_key not in ("common", "organizations"):
        tenant_for(tenant_key)
    return jsonify(current_app.extensions["m365_keys"].jwks())


@entra_bp.get("/common/discovery/instance")
def instance_discovery() -> Response:
    """MSAL's instance discovery (when pointed here): the emulator's host is its own, valid instance."""
    host = base_url().split("://", 1)[-1]
    endpoint = request.args.get("authorization_endpoint", "")
    tail = endpoint.split(host, 1)[-1].split("/oauth2/", 1)[0] if host in endpoint else "/common"
    return jsonify({"tenant_discovery_endpoint": f"{base_url()}{tail}/v2.0/.well-known/openid-configuration",
                    "api-version": "1.1",
                    "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]})


# --- token endpoint ------------------------------------------------------------------------------------------


def _authenticate_client(tenant: Tenant, app: dict, tenant_key: str) -> str:
    """Check the client's credential; returns ``appidacr`` ("2" certificate, "1" secret, "0" public)."""
    form = request.form
    assertion_type = form.get("client_assertion_type")
    if form.get("client_assertion") or assertion_type:
        if assertion_type != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            raise AadError(400, "invalid_request", 50027,
                           "Invalid client_assertion_type: expected "
                           "'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.")
        audiences = {f"{r}/{t}/oauth2/{v}token" for r in roots() for t in {tenant.id, tenant_key}
                     for v in ("v2.0/", "")}
        verify_client_assertion(form.get("client_assertion", ""), app, audiences)
        return "2"
    secret = form.get("client_secret")
    if secret is None and request.authorization and request.authorization.type == "basic":
        secret = request.authorization.password
    if secret is not None:
        if secret not in (app.get("secrets") or []):
            raise AadError(401, "invalid_client", 7000215,
                           "Invalid client secret provided. Ensure the secret being sent in the request is the "
                           f"client secret value, not the client secret ID, for a secret added to app "
                           f"'{app['appId']}'.")
        return "1"
    if app.get("publicClient"):
        return "0"
    raise AadError(401, "invalid_client", 7000218,
                   "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")


def _app_token(tenant: Tenant, app: dict, resource: str, acr: str) -> str:
    now = int(time.time())
    iss = sts_issuer(tenant)
    claims = {"aud": resource, "iss": iss, "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME,
              "aio": secrets.token_urlsafe(16), "app_displayname": app.get("displayName"), "appid": app["appId"],
              "appidacr": acr, "idp": iss, "idtyp": "app", "oid": app["servicePrincipalId"],
              "rh": secrets.token_urlsafe(12), "sub": app["servicePrincipalId"], "tid": tenant.id,
              "uti": secrets.token_urlsafe(16), "ver": "1.0"}
    roles = granted_permissions(app)
    if roles:
        claims["roles"] = roles
    return _sign(claims)


def _token_response(access_token: str, **extra) -> Response:
    resp = jsonify({"token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "ext_expires_in": TOKEN_LIFETIME,
                    **extra, "access_token": access_token})
    resp.headers["Cache-Control"] = "no-store, no-cache"
    return resp


def _client_credentials(tenant: Tenant, app: dict, acr: str) -> Response:
    scopes = request.form.get("scope", "").split()
    if not scopes:
        raise AadError(400, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'scope'.")
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        raise AadError(400, "invalid_scope", 1002012,
                       f"The provided value for scope {' '.join(scopes)} is not valid. Client credential flows "
                       "must have a scope value with /.default suffixed to the resource identifier "
                       "(application ID URI).")
    resource = scopes[0][: -len("/.default")].rstrip("/")
    if resource not in graph_resources(tenant):
        raise AadError(400, "invalid_resource", 500011,
                       f"The resource principal named {resource} was not found in the tenant named "
                       f"{tenant.display_name}. This can happen if the application has not been installed by the "
                       "administrator of the tenant or consented to by any user in the tenant. You might have "
                       "sent your authentication request to the wrong tenant.")
    return _token_response(_app_token(tenant, app, resource, acr))


@entra_bp.post("/<tenant_key>/oauth2/v2.0/token")
def token(tenant_key: str) -> Response:
    """The v2.0 token endpoint: client_credentials, authorization_code (+PKCE) and refresh_token grants."""
    from .entra_login import redeem_code, redeem_refresh_token

    tenant = tenant_for(tenant_key)
    client_id = request.form.get("client_id") or (request.authorization.username if request.authorization else None)
    with store().lock:
        app = app_for(tenant, client_id)
        grant = request.form.get("grant_type")
        if not grant:
            raise AadError(400, "invalid_request", 900144,
                           "The request body must contain the following parameter: 'grant_type'.")
        if grant not in ("client_credentials", "authorization_code", "refresh_token"):
            raise AadError(400, "unsupported_grant_type", 70003,
                           f"The app requested an unsupported grant type '{grant}'.")
        acr = _authenticate_client(tenant, app, tenant_key)
        if grant == "client_credentials":
            return _client_credentials(tenant, app, acr)
        if grant == "authorization_code":
            return redeem_code(tenant, app)
        return redeem_refresh_token(tenant, app)


def user_tokens(tenant: Tenant, app: dict, user: dict, scopes: list[str], nonce: str | None) -> Response:
    """Token response of a user sign-in: a delegated Graph access token, an ID token (``openid``) and a
    refresh token (``offline_access``)."""
    from .entra_login import mint_refresh_token

    now = int(time.time())
    graph_scopes = sorted({s.rsplit("/", 1)[-1] for s in scopes if s not in OIDC_SCOPES
                           and not s.endswith(".default")} | ({"openid", "profile", "email"} & set(scopes)))
    resource = GRAPH_RESOURCES[tenant.cloud]
    access = _sign({"aud": resource, "iss": sts_issuer(tenant), "iat": now, "nbf": now,
                    "exp": now + TOKEN_LIFETIME, "app_displayname": app.get("displayName"),
                    "appid": app["appId"], "appidacr": "2", "idtyp": "user", "name": user.get("displayName"),
                    "oid": user["id"], "scp": " ".join(graph_scopes), "sub": pairwise_sub(user["id"], resource),
                    "tid": tenant.id, "unique_name": user["userPrincipalName"],
                    "upn": user["userPrincipalName"], "uti": secrets.token_urlsafe(16), "ver": "1.0"})
    extra: dict = {"scope": " ".join(sorted(set(scopes) - {"offline_access"}) or ["openid"])}
    if "openid" in scopes:
        claims = {"aud": app["appId"], "iss": v2_issuer(tenant), "iat": now, "nbf": now, "exp": now + 3600,
                  "name": user.get("displayName"), "oid": user["id"],
                  "preferred_username": user["userPrincipalName"], "rh": secrets.token_urlsafe(12),
                  "sid": str(uuid.uuid4()), "sub": pairwise_sub(user["id"], app["appId"]), "tid": tenant.id,
                  "uti": secrets.token_urlsafe(16), "ver": "2.0"}
        if nonce:
            claims["nonce"] = nonce
        if user.get("mail"):
            claims["email"] = user["mail"]
        extra["id_token"] = _sign(claims)
    if "offline_access" in scopes:
        extra["refresh_token"] = mint_refresh_token(tenant, app, user, scopes)
    if request.form.get("client_info") == "1":
        extra["client_info"] = base64.urlsafe_b64encode(
            json.dumps({"uid": user["id"], "utid": tenant.id}).encode()).rstrip(b"=").decode()
    return _token_response(access, **extra)
