"""Shared helpers of every Graph endpoint of the emulator (``B/v1.0/...``).

Typical handler::

    @bp.get("/v1.0/users/<uid>/contacts")
    def list_contacts(uid):
        ctx = graph_context()                              # 401 unless a valid bearer token
        require_permission("Contacts.Read", "Contacts.ReadWrite")   # 403 Authorization_RequestDenied
        with store().lock:
            user = resolve_user(ctx.tenant, uid)           # 404 Request_ResourceNotFound
            items = sorted(ctx.tenant.contacts.get(user["id"], {}).values(), key=lambda c: c["id"])
            page, next_link = paginate(items, tenant=ctx.tenant, default_size=10, max_size=1000)
        select = parse_select()
        return graph_json({"@odata.context": odata_context(f"users('{user['id']}')/contacts", select),
                           "value": [apply_select(c, select, always=("id",)) for c in page],
                           **({"@odata.nextLink": next_link} if next_link else {})})

Errors: ``raise graph_error(status, code, message)`` anywhere inside a request; the app renders Graph's envelope
``{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}``. The app adds
the standard headers (``request-id``, ``client-request-id``, ``OData-Version: 4.0``, ``Cache-Control``,
odata ``Content-Type`` for JSON) to every ``/v1.0`` response, so plain ``flask.jsonify`` works too.

Opaque tokens (skip/delta): :func:`sign_token` / :func:`read_token` (HMAC-signed, bound to the tenant and its
``token_epoch``; ``POST /_emulator/tenants/{tid}/delta/reset`` bumps the epoch so every earlier token raises
:class:`StaleToken`). Outlook delta handlers map :class:`StaleToken` / :class:`BadToken` to the error they need.
"""
from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence
from urllib.parse import quote, urlencode

import jwt
from flask import Response, current_app, request

from .store import Store, Tenant, UnknownTenant, public

GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
#: Graph's own application id: v2 app-only tokens may carry it as ``aud``.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCES = {
    "global": "https://graph.microsoft.com",
    "usgov": "https://graph.microsoft.us",
    "usgov-dod": "https://dod-graph.microsoft.us",
    "china": "https://microsoftgraph.chinacloudapi.cn",
}
MAILBOX_CONCURRENCY = 4


# --- errors and responses ------------------------------------------------------------------------------------


class GraphHTTPError(Exception):
    """An error answer of a Graph endpoint; raise it (via :func:`graph_error`) and the app renders it."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                 inner: dict[str, Any] | None = None, body: Any = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner = inner or {}
        self.body = body

    def response(self) -> Response:
        if self.body is not None:
            return graph_json(self.body, self.status, self.headers)
        return error_response(self.status, self.code, self.message, headers=self.headers, inner=self.inner)


def graph_error(status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                inner: dict[str, Any] | None = None) -> GraphHTTPError:
    """Build the exception for a Graph error answer: ``raise graph_error(404, "ErrorItemNotFound", "...")``.

    ``inner`` adds fields to ``innerError`` (the 429 body carries ``code``/``status``/``message`` there).
    """
    return GraphHTTPError(status, code, message, headers=headers, inner=inner)


def request_id() -> str:
    """This request's ``request-id`` (generated once per request)."""
    # Per-request state lives in the WSGI environ, not in ``g``: $batch sub-requests share the app context.
    env = request.environ
    if "m365.request_id" not in env:
        env["m365.request_id"] = str(uuid.uuid4())
    return env["m365.request_id"]


def client_request_id() -> str:
    """The client's ``client-request-id`` header, or this request's id when the client sent none."""
    return request.headers.get("client-request-id") or request_id()


def error_body(code: str, message: str, inner: dict[str, Any] | None = None) -> dict:
    """Graph's error envelope for the current request."""
    return {"error": {"code": code, "message": message, "innerError": {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id(), "client-request-id": client_request_id(), **(inner or {})}}}


def error_response(status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                   inner: dict[str, Any] | None = None) -> Response:
    """A complete Graph error response (envelope + standard headers)."""
    return graph_json(error_body(code, message, inner), status, headers)


def graph_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with Graph's odata ``Content-Type`` (the standard headers are added by the app)."""
    resp = Response(json.dumps(body, separators=(",", ":")), status=status, content_type=GRAPH_JSON)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def add_standard_headers(resp: Response) -> Response:
    """``after_request`` hook of the Graph blueprints: Graph's response headers on every answer."""
    resp.headers["request-id"] = request_id()
    resp.headers["client-request-id"] = client_request_id()
    resp.headers.setdefault("OData-Version", "4.0")
    resp.headers.setdefault("Cache-Control", "no-cache")
    for k, v in (request.environ.get("m365.extra_headers") or {}).items():
        resp.headers.setdefault(k, v)
    if resp.mimetype == "application/json" and "odata.metadata" not in (resp.content_type or ""):
        resp.headers["Content-Type"] = GRAPH_JSON
    return resp


# --- app state -----------------------------------------------------------------------------------------------


def store() -> Store:
    """The emulator's :class:`~flask_pbx365.emulator.store.Store` (``current_app.extensions["m365_store"]``)."""
    return current_app.extensions["m365_store"]


def base_url() -> str:
    """The emulator's own base URL ``B`` without trailing slash (nextLinks and contexts are built on it)."""
    return (current_app.config.get("M365_BASE_URL") or request.url_root).rstrip("/")


def odata_context(fragment: str, select: Sequence[str] | None = None, *, entity: bool = False) -> str:
    """``B/v1.0/$metadata#{fragment}[(a,b)][/$entity]``, e.g. ``odata_context("users", ["id"], entity=True)``."""
    sel = f"({','.join(select)})" if select else ""
    return f"{base_url()}/v1.0/$metadata#{fragment}{sel}{'/$entity' if entity else ''}"


def build_url(path: str, params: dict[str, str]) -> str:
    """``B{path}?{params}`` with OData's ``$``, ``(``, ``)``, ``'`` and ``,`` left unescaped, as Graph writes them."""
    query = urlencode(params, safe="$,()'", quote_via=quote)
    return f"{base_url()}{path}" + (f"?{query}" if query else "")


# --- authentication and permissions --------------------------------------------------------------------------


@dataclass
class GraphContext:
    """Who is calling: the tenant, the registered application, and what the token grants.

    ``roles`` are application permissions (app-only tokens); ``scopes`` delegated ones (``scp``), in which
    case ``user_id`` is the signed-in user's object id (``/me``).
    """

    tenant: Tenant
    app: dict
    roles: frozenset[str]
    scopes: frozenset[str] = frozenset()
    user_id: str | None = None
    claims: dict = field(default_factory=dict)

    @property
    def app_id(self) -> str:
        return self.app.get("appId", "")


def _unauthorized(message: str) -> GraphHTTPError:
    return graph_error(401, "InvalidAuthenticationToken", message,
                       headers={"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})


def graph_context() -> GraphContext:
    """Authenticate the request's bearer token (once per request) and return its :class:`GraphContext`.

    401 ``InvalidAuthenticationToken`` when the token is missing, forged, expired, or for another resource.
    Also records the tenant and app id for the request log.
    """
    if "m365.ctx" in request.environ:
        return request.environ["m365.ctx"]
    auth = request.headers.get("Authorization", "")
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        raise _unauthorized("Access token is empty.")
    claims = _verified_claims(auth[7:].strip())
    try:
        tenant = store().tenant(claims.get("tid", ""))
    except UnknownTenant as exc:
        raise _unauthorized("Access token validation failure. The tenant does not exist.") from exc
    request.environ["m365.tenant_id"] = tenant.id
    request.environ["m365.app_id"] = claims.get("appid") or claims.get("azp")
    if not _audience_ok(claims.get("aud"), tenant):
        raise _unauthorized("Access token validation failure. Invalid audience.")
    app = tenant.applications.get(claims.get("appid") or claims.get("azp") or "")
    if app is None:
        raise _unauthorized("Access token validation failure. The application does not exist in the tenant.")
    scopes = frozenset((claims.get("scp") or "").split())
    ctx = GraphContext(tenant, app, frozenset(claims.get("roles") or ()), scopes,
                       claims.get("oid") if scopes else None, claims)
    request.environ["m365.ctx"] = ctx
    return ctx


#: Access tokens whose signature was verified, most recent last (a $batch of 20 carries the same token 20 times).
_VERIFIED_MAX = 256


def _verified_claims(token: str) -> dict:
    """The claims of a genuine, unexpired access token: the signature is checked once per token (while its
    signing key is still published), the lifetime on every request."""
    keys = current_app.extensions["m365_keys"]
    lock, cache = current_app.extensions.setdefault("m365_verified_tokens", (threading.Lock(), OrderedDict()))
    try:
        hit = cache.get(token)
        if hit is not None and keys.publishes(hit[0]):
            if time.time() > float(hit[1].get("exp", 0)) + 5:
                raise jwt.ExpiredSignatureError("Signature has expired")
            return hit[1]
        kid = jwt.get_unverified_header(token).get("kid", "")
        key = keys.public_key(kid)
        if key is None:
            raise _unauthorized("Access token validation failure. Invalid signing key.")
        claims = jwt.decode(token, key, algorithms=["RS256"], options={"verify_aud": False}, leeway=5)
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("Lifetime validation failed, the token is expired.") from exc
    except jwt.PyJWTError as exc:
        raise _unauthorized("Access token validation failure.") from exc
    with lock:
        cache[token] = (kid, claims)
        while len(cache) > _VERIFIED_MAX:
            cache.popitem(last=False)
    return claims


def _audience_ok(aud: Any, tenant: Tenant) -> bool:
    allowed = {GRAPH_APP_ID, GRAPH_RESOURCES.get(tenant.cloud, ""), base_url()}
    allowed |= {a + "/" for a in allowed}
    return isinstance(aud, str) and aud in allowed


def require_permission(*any_of: str) -> str:
    """403 ``Authorization_RequestDenied`` unless the token grants one of ``any_of``; returns the one found.

    Application roles and delegated scopes both count (a ``.ReadWrite`` grant does not imply ``.Read``
    here: list every permission Microsoft documents for the call).
    """
    ctx = graph_context()
    for perm in any_of:
        if perm in ctx.roles or perm in ctx.scopes:
            return perm
    raise graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def has_permission(*any_of: str) -> bool:
    """Whether the token grants any of ``any_of`` (no error)."""
    ctx = graph_context()
    return any(p in ctx.roles or p in ctx.scopes for p in any_of)


def resolve_user(tenant: Tenant, id_or_upn: str) -> dict:
    """The (not soft-deleted) user with that object id or userPrincipalName; 404 ``Request_ResourceNotFound``.

    Accepts ``me`` for delegated tokens and the ``('upn')`` key form. Call it holding ``store().lock``.
    """
    key = id_or_upn.strip()
    if key.startswith("('") and key.endswith("')"):
        key = key[2:-2]
    if key.lower() == "me":
        ctx = graph_context()
        if ctx.user_id is None:
            raise graph_error(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
        key = ctx.user_id
    user = tenant.users.get(key) or tenant.users.get(key.lower())
    if user is None:
        low = key.lower()
        user = next((u for u in tenant.users.values()
                     if (u.get("userPrincipalName") or "").lower() == low), None)
    if user is None or user.get("_deleted"):
        raise graph_error(404, "Request_ResourceNotFound",
                          f"Resource '{id_or_upn}' does not exist or one of its queried reference-property "
                          "objects are not present.")
    return user


def require_mailbox(user: dict) -> dict:
    """404 ``MailboxNotEnabledForRESTAPI`` unless the user has an Exchange mailbox (a ``mail`` address)."""
    if not user.get("mail"):
        raise graph_error(404, "MailboxNotEnabledForRESTAPI",
                          "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
    return user


def eventual_consistency() -> bool:
    """Whether the request sent ``ConsistencyLevel: eventual`` (needed for directory advanced queries)."""
    return request.headers.get("ConsistencyLevel", "").strip().lower() == "eventual"


# --- query options -------------------------------------------------------------------------------------------


def parse_select(value: str | None = None) -> list[str] | None:
    """The ``$select`` list of the request (or of ``value``), or None when absent."""
    raw = request.args.get("$select") if value is None else value
    if not raw:
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


def apply_select(obj: dict, select: Sequence[str] | None, default: Sequence[str] | None = None, *,
                 always: Sequence[str] = ()) -> dict:
    """The Graph view of ``obj``: the ``select``-ed properties (null when unset), else ``default`` ones, else
    every public property; ``always`` properties (e.g. ``("id",)`` for delta) are included in any case.
    Private ``_`` keys never appear.
    """
    props = select or default
    if props is None:
        out = public(obj)
        for p in always:
            out.setdefault(p, obj.get(p))
        return out
    out = {p: obj.get(p) for p in always}
    for p in props:
        if not p.startswith("_"):
            out[p] = obj.get(p)
    return out


def prefer() -> dict[str, str | None]:
    """The ``Prefer`` header's preferences: ``{"odata.maxpagesize": "50", "return": "minimal", ...}``."""
    out: dict[str, str | None] = {}
    for header in request.headers.getlist("Prefer"):
        for part in header.split(","):
            name, sep, value = part.strip().partition("=")
            if name:
                out[name.strip().lower()] = value.strip().strip('"') if sep else None
    return out


def page_size(default: int, maximum: int, *, allow_top: bool = True, top_over_max_is_error: bool = False) -> int:
    """Page size from ``$top`` (when ``allow_top``) or ``Prefer: odata.maxpagesize`` (clamped), else ``default``.

    ``$top`` above ``maximum`` is clamped, or a 400 ``Request_BadRequest`` with ``top_over_max_is_error``
    (the directory's behaviour). Non-numeric values are a 400.
    """
    top = request.args.get("$top") if allow_top else None
    if top is not None:
        if not top.isdigit() or int(top) < 1:
            raise graph_error(400, "Request_BadRequest", f"Invalid page size specified: '{top}'.")
        if int(top) > maximum and top_over_max_is_error:
            raise graph_error(400, "Request_BadRequest",
                              f"Invalid page size specified: '{top}'. Must be between 1 and {maximum} inclusive.")
        return min(int(top), maximum)
    pref = prefer().get("odata.maxpagesize")
    if pref and pref.isdigit() and int(pref) > 0:
        return min(int(pref), maximum)
    return default


# --- opaque tokens -------------------------------------------------------------------------------------------


class BadToken(ValueError):
    """A skip/delta token that is malformed, forged, or minted for another tenant or path."""


class StaleToken(BadToken):
    """A genuine token invalidated since (delta reset of its tenant) or past its ``max_age``."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(body: str) -> str:
    secret = current_app.config["M365_TOKEN_SECRET"]
    return _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest()[:18])


def sign_token(tenant: Tenant, payload: dict) -> str:
    """An opaque, tamper-proof token carrying ``payload`` (JSON-serialisable), bound to ``tenant``."""
    body = _b64(json.dumps({"p": payload, "t": tenant.id, "e": tenant.token_epoch,
                            "i": int(datetime.now(timezone.utc).timestamp())}, separators=(",", ":")).encode())
    return f"{body}.{_mac(body)}"


def read_token(tenant: Tenant, token: str, *, max_age: float | None = None) -> dict:
    """The payload of a :func:`sign_token` token; :class:`BadToken` if forged/foreign, :class:`StaleToken`
    if reset since or older than ``max_age`` seconds."""
    body, _, mac = (token or "").partition(".")
    if not body or not hmac.compare_digest(mac, _mac(body)):
        raise BadToken("token signature mismatch")
    try:
        data = json.loads(_unb64(body))
    except ValueError as exc:
        raise BadToken("token unreadable") from exc
    if data.get("t") != tenant.id:
        raise BadToken("token of another tenant")
    if data.get("e") != tenant.token_epoch:
        raise StaleToken("token invalidated by a reset")
    if max_age is not None and datetime.now(timezone.utc).timestamp() - data.get("i", 0) > max_age:
        raise StaleToken("token expired")
    return data["p"]


def _query_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in request.args.items() if k not in names}


def collection(context: str, value: list, next_link: str | None, *, count: int | None = None) -> dict:
    """A Graph collection answer: ``@odata.context``, ``@odata.count`` (when asked for, first page only),
    ``@odata.nextLink`` (when more pages follow) and ``value``, in Graph's order."""
    body: dict = {"@odata.context": context}
    if count is not None and not request.args.get("$skiptoken"):
        body["@odata.count"] = count
    if next_link:
        body["@odata.nextLink"] = next_link
    body["value"] = value
    return body


def paginate(items: Sequence[Any], *, tenant: Tenant, default_size: int, max_size: int,
             key: Any = None, size: int | None = None, top_over_max_is_error: bool = False,
             ) -> tuple[list[Any], str | None]:
    """One page of ``items`` for the current request, and the ``@odata.nextLink`` (None on the last page).

    The nextLink is the request's URL on the emulator's base URL with its original query parameters plus an
    opaque signed ``$skiptoken``. With ``key`` (a function), ``items`` must be sorted by it and pages continue
    after the last key seen (stable under concurrent inserts/deletes); otherwise by offset. A forged or
    reset ``$skiptoken`` answers 400 ``Request_BadRequest``. ``size`` overrides :func:`page_size`.
    """
    n = size or page_size(default_size, max_size, top_over_max_is_error=top_over_max_is_error)
    start = 0
    raw = request.args.get("$skiptoken")
    if raw:
        try:
            state = read_token(tenant, raw)
        except BadToken as exc:
            raise graph_error(400, "Request_BadRequest", "The specified page token value is invalid or has "
                              "expired. Restart the query without $skiptoken.") from exc
        if state.get("path") != request.path:
            raise graph_error(400, "Request_BadRequest", "The $skiptoken belongs to another request.")
        if key is not None:
            start = bisect.bisect_right(items, state["k"], key=key)  # O(log n): no list of every key per page
        else:
            start = int(state["o"])
    page = list(items[start:start + n])
    if start + n >= len(items):
        return page, None
    state = {"path": request.path}
    if key is not None:
        state["k"] = key(page[-1])
    else:
        state["o"] = start + n
    params = _query_without("$skiptoken")
    params["$skiptoken"] = sign_token(tenant, state)
    return page, build_url(request.path, params)


# --- mailbox concurrency -------------------------------------------------------------------------------------

_slots_lock = threading.Lock()


@contextmanager
def mailbox_slot(tenant: Tenant, user_id: str) -> Iterator[None]:
    """Hold one of the mailbox's 4 concurrent-request slots (Outlook's per app+mailbox limit).

    Raises 429 ``ApplicationThrottled`` ("Application is over its MailboxConcurrency limit.") with
    ``Retry-After`` when 4 requests of the same app to the same mailbox are already in flight.
    """
    slots: dict = current_app.extensions.setdefault("m365_mailbox_slots", {})
    app_id = graph_context().app_id if "m365.ctx" in request.environ else ""
    k = (tenant.id, app_id, user_id)
    with _slots_lock:
        if slots.get(k, 0) >= MAILBOX_CONCURRENCY:
            raise graph_error(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                              headers={"Retry-After": "1"})
        slots[k] = slots.get(k, 0) + 1
    try:
        yield
    finally:
        with _slots_lock:
            slots[k] -= 1

