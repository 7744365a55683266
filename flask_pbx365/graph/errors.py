"""Turn Graph error answers into the extension's exceptions, with messages an admin can act on."""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlsplit

from ..exceptions import (
    AuthenticationError,
    DeltaTokenExpiredError,
    FeatureUnavailableError,
    GraphError,
    NotFoundError,
    PermissionMissingError,
    ThrottledError,
)
from .permissions import permission_for
from .retry import header

#: Graph/Outlook/OneDrive codes meaning "this delta/skip token is no longer usable: start over".
DELTA_RESET_CODES = frozenset(code.lower() for code in (
    "syncStateNotFound", "syncStateInvalid", "resyncRequired", "resyncApplyDifferences",
    "resyncUploadDifferences", "ErrorInvalidSyncStateData", "ErrorSyncStateNotFound", "InvalidDeltaToken",
))


def parse_error(body: Any) -> tuple[str | None, str, str | None]:
    """(code, message, request-id) from Graph's error envelope; tolerant of odd bodies."""
    code, message, request_id = None, "", None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = error.get("code") or None
        message = str(error.get("message") or "")
        inner = error.get("innerError") or error.get("innererror") or {}
        if isinstance(inner, dict):
            request_id = inner.get("request-id")
    elif isinstance(body, dict) and isinstance(body.get("error"), str):  # OAuth-style
        code, message = body["error"], str(body.get("error_description") or "")
    return code, message, request_id


def graph_path(url: str) -> str:
    """``/users/x`` from ``https://host/v1.0/users/x?...`` (the path the permission table is written for)."""
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
    for prefix in ("/v1.0", "/beta"):
        if path.lower().startswith(prefix + "/"):
            return path[len(prefix):]
    return path


def error_for(status: int, body: Any, headers: Mapping[str, str] | None, method: str, url: str, *,
              context: str = "call") -> GraphError:
    """The exception for a non-success answer.

    ``context``: ``"call"`` (ordinary), ``"delta-start"`` (first request of a new delta round: 4xx/501 means
    the cloud lacks the feature) or ``"delta-continue"`` (a stored delta/next link: 410 and sync-state codes
    mean the token expired).
    """
    code, message, request_id = parse_error(body)
    request_id = request_id or header(headers, "request-id")
    path = graph_path(url)
    where = f"{method} {path}"
    detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    suffix = f" (request-id {request_id})" if request_id else ""
    kw = {"status": status, "code": code, "request_id": request_id}
    lcode = (code or "").lower()

    if context == "delta-continue" and (status == 410 or lcode in DELTA_RESET_CODES or (
            status in (400, 404) and "token" in message.lower())):
        return DeltaTokenExpiredError(
            f"The delta token of {path} is no longer valid ({detail}); a full resync will follow{suffix}", **kw)
    if status == 403:
        needed = permission_for(method, path)
        if needed:
            permission, alternatives = needed
            alt = f" (or {' or '.join(alternatives)})" if alternatives else ""
            return PermissionMissingError(
                f"Missing application permission {permission}{alt} for {where}: add it in Entra > "
                f"API permissions and grant admin consent{suffix}", permission=permission, **kw)
        return PermissionMissingError(
            f"Access denied to {where} ({detail}): check the app's API permissions and admin consent in "
            f"Entra{suffix}", **kw)
    if status == 501 or (context == "delta-start" and status in (400, 405)):
        return FeatureUnavailableError(
            f"This Microsoft cloud does not offer {where} ({detail}); the extension falls back where it can"
            f"{suffix}", **kw)
    if status == 404:
        return NotFoundError(f"Not found: {where} ({detail}){suffix}", **kw)
    if status in (429, 503, 504):
        return ThrottledError(f"Microsoft Graph is throttling or unavailable for {where} ({detail}){suffix}", **kw)
    if status == 401:
        return AuthenticationError(
            f"Microsoft Graph rejected a freshly acquired token for {where} ({detail}): check that the app "
            f"belongs to this directory and has admin consent{suffix}", **kw)
    return GraphError(f"Microsoft Graph call {where} failed: {detail}{suffix}", **kw)
