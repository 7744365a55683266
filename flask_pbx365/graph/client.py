"""The Microsoft Graph client: tokens, retries, throttling, paging, delta and ``$batch`` for one tenant app."""
from __future__ import annotations

import base64
import json as jsonlib
import logging
import time
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

import requests

from ..exceptions import MalformedResponseError, ThrottledError, UnsafeLinkError
from .batch import BatchRequest, BatchResponse, run_batch
from .credentials import AppCredentials
from .errors import error_for, graph_path
from .mailbox import mailbox_slot
from .paging import DeltaRound, iter_pages
from .permissions import effective, permission_for
from .retry import (
    NOT_PROCESSED_STATUSES,
    RETRYABLE_STATUSES,
    RetryPolicy,
    is_transient,
    is_unsent,
)
from .tokens import TokenProvider
from .transport import TrustedHttp, connection_error, new_session, trust_store

logger = logging.getLogger("flask_pbx365.graph")


class _Bearer(requests.auth.AuthBase):
    """Bearer auth as a requests auth object: keeps the token out of header dicts and stops ~/.netrc from
    replacing it; requests drops it on a redirect to another host."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


class GraphClient:
    """Calls Microsoft Graph v1.0 as one tenant's Entra app (app-only, certificate credential).

    Paths are relative to ``{graph_url}/v1.0`` (``"/users"``) or absolute URLs on the configured Graph host
    (nextLinks). ``mailbox`` names the user whose Outlook mailbox a call touches, to keep within Outlook's
    concurrency limit per mailbox. ``algorithm`` picks the client assertion: ``"PS256"`` (``x5t#S256``) or
    ``"RS256"`` (legacy ``x5t``). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, credentials: AppCredentials, *, timeout: float = 30, max_retries: int = 6,
                 max_backoff: float = 60, mailbox_concurrency: int = 4, session: requests.Session | None = None,
                 algorithm: str = "PS256", backoff_base: float = 1.0):
        self.credentials = credentials
        self.cloud = credentials.cloud
        self.base_url = self.cloud.graph_url.rstrip("/") + "/v1.0"
        self.policy = RetryPolicy(max_retries=max_retries, max_backoff=max_backoff, base=backoff_base)
        self.mailbox_concurrency = mailbox_concurrency
        self._own_session = session is None
        self._http = TrustedHttp(session or new_session(pool_maxsize=max(10, 4 * mailbox_concurrency)),
                                 verify=trust_store(self.cloud), timeout=timeout)
        self.tokens = TokenProvider(credentials, algorithm=algorithm, timeout=timeout)

    # -- lifecycle -------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool (only when this client created it)."""
        if self._own_session:
            self._http.close()

    def __enter__(self) -> "GraphClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- URLs ------------------------------------------------------------------------------------------------

    def check_link(self, url: str) -> str:
        """Return ``url`` if it is https on the configured Graph host and port, else raise UnsafeLinkError."""
        parts = urlsplit(url)
        if (_origin(url) != _origin(self.cloud.graph_url) or parts.scheme.lower() != "https"
                or parts.username or parts.password):
            logger.warning("Refusing to follow a link outside %s: %s://%s", self.cloud.graph_host,
                           parts.scheme, parts.netloc)
            raise UnsafeLinkError(
                f"Microsoft Graph returned a link to {parts.scheme}://{parts.netloc}, which is not the configured "
                f"Graph endpoint {self.cloud.graph_url}; it was not followed (the app's token is only sent there). "
                "If the Graph URL on the Configure tab is wrong, fix it.", code="unsafeLink")
        return url

    def url_for(self, path: str) -> str:
        """Absolute URL of ``path`` (checked with :meth:`check_link` when already absolute)."""
        if "://" in path:
            return self.check_link(path)
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def relative(self, link: str) -> str | None:
        """``link`` (an absolute nextLink or deltaLink) relative to ``/v1.0``, as ``$batch`` items take it; None
        when it is not under this client's ``/v1.0`` (raises UnsafeLinkError off the Graph host)."""
        self.check_link(link)
        head, _, rest = link.partition("/v1.0/")
        return "/" + rest if rest and _origin(head) == _origin(self.base_url) else None

    # -- the request loop ------------------------------------------------------------------------------------

    def _send(self, method: str, url: str, *, params: Any = None, json: Any = None, data: Any = None,
              headers: Mapping[str, str] | None = None, mailbox: str | None = None,
              idempotent: bool | None = None) -> requests.Response:
        """One logical request: token, retries (429/503/504, connection errors), one re-token on 401."""
        if idempotent is None:
            idempotent = method.upper() != "POST"
        sent_headers = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        where = f"{method} {graph_path(url)}"
        attempt = 0
        refreshed = False
        while True:
            token = self.tokens.get()
            started = time.monotonic()
            try:
                with mailbox_slot(self.credentials.directory_id, self.credentials.client_id, mailbox,
                                  self.mailbox_concurrency):
                    response = self._http.request(method, url, params=params, json=json, data=data,
                                                  headers=sent_headers, auth=_Bearer(token))
            except requests.RequestException as exc:
                retryable = is_transient(exc) and (idempotent or is_unsent(exc))
                if retryable and attempt < self.policy.max_retries:
                    delay = self.policy.backoff(attempt)
                    logger.warning("%s failed (%s); retry %d in %.2fs", where, type(exc).__name__, attempt + 1, delay)
                    time.sleep(delay)
                    attempt += 1
                    continue
                error = connection_error(exc, method, url, self._http.verify)
                if attempt:
                    error.args = (f"{error.args[0]} Gave up after {attempt} retries.",)
                raise error from exc
            status = response.status_code
            logger.debug("%s -> %d in %.3fs", where, status, time.monotonic() - started)
            if status == 401 and not refreshed:
                logger.info("%s answered 401: acquiring a new token and retrying once", where)
                response.close()
                self.tokens.invalidate(token)
                refreshed = True
                continue
            if status == 403 and not refreshed and self._lacks_role(token, method, url):
                # Admin consent granted after this token was issued: a fresh token carries the new roles.
                logger.info("%s answered 403 and the token lacks the role: acquiring a new token once", where)
                response.close()
                self.tokens.invalidate(token)
                refreshed = True
                continue
            if status in RETRYABLE_STATUSES and (idempotent or status in NOT_PROCESSED_STATUSES):
                if attempt < self.policy.max_retries:
                    delay = self.policy.delay(attempt, response.headers.get("Retry-After"))
                    logger.info("%s answered %d; retry %d in %.2fs", where, status, attempt + 1, delay)
                    response.close()
                    time.sleep(delay)
                    attempt += 1
                    continue
                error = error_for(status, _body(response), response.headers, method, url)
                raise ThrottledError(
                    f"Microsoft Graph kept answering HTTP {status} to {where} after {attempt} retries; the sync "
                    f"will try again later. {error}", status=status, code=error.code, request_id=error.request_id)
            return response

    def _checked(self, method: str, url: str, expected: tuple[int, ...] | None, *, context: str = "call",
                 **kw: Any) -> requests.Response:
        response = self._send(method, url, **kw)
        ok = (200 <= response.status_code < 300) if expected is None else response.status_code in expected
        if not ok:
            raise error_for(response.status_code, _body(response), response.headers, method, url, context=context)
        return response

    def _get_json(self, url: str, *, params: Any = None, headers: Mapping[str, str] | None = None,
                  mailbox: str | None = None, context: str = "call") -> dict:
        response = self._checked("GET", url, None, context=context, params=params, headers=headers,
                                 mailbox=mailbox)
        return _json_object(response, url) if response.content else {}

    # -- public API ------------------------------------------------------------------------------------------

    def get(self, path: str, *, params: Any = None, headers: Mapping[str, str] | None = None,
            mailbox: str | None = None) -> dict:
        """GET a JSON object."""
        return self._get_json(self.url_for(path), params=params, headers=headers, mailbox=mailbox)

    def get_bytes(self, path: str, *, headers: Mapping[str, str] | None = None,
                  mailbox: str | None = None) -> tuple[bytes, dict[str, str]]:
        """GET binary content (a photo's ``$value``): ``(content, headers)`` with lower-case header names."""
        url = self.url_for(path)
        response = self._checked("GET", url, None, headers=headers, mailbox=mailbox)
        return response.content, {k.lower(): v for k, v in response.headers.items()}

    def post(self, path: str, json: Any = None, *, headers: Mapping[str, str] | None = None,
             mailbox: str | None = None, expected: tuple[int, ...] = (200, 201, 202, 204),
             data: bytes | str | None = None, idempotent: bool = False) -> dict | None:
        """POST JSON (or raw ``data``, e.g. a base64 MIME message); the answer's JSON object, None when empty.

        Retried on 429/503 only: after a lost response the server may have acted on it. A POST that only reads
        (``getPresencesByUserId``) passes ``idempotent=True`` and is retried like a GET.
        """
        url = self.url_for(path)
        response = self._checked("POST", url, expected, json=json, data=data, headers=headers, mailbox=mailbox,
                                 idempotent=idempotent)
        return _json_object(response, url) if response.content else None

    def patch(self, path: str, json: Any = None, *, headers: Mapping[str, str] | None = None,
              mailbox: str | None = None, expected: tuple[int, ...] = (200, 204)) -> dict | None:
        """PATCH with a JSON body; the answer's JSON object, None when empty (Graph's usual 204)."""
        url = self.url_for(path)
        response = self._checked("PATCH", url, expected, json=json, headers=headers, mailbox=mailbox)
        return _json_object(response, url) if response.content else None

    def delete(self, path: str, *, headers: Mapping[str, str] | None = None, mailbox: str | None = None,
               expected: tuple[int, ...] = (200, 202, 204)) -> None:
        """DELETE."""
        self._checked("DELETE", self.url_for(path), expected, headers=headers, mailbox=mailbox)

    def iter_pages(self, path: str, *, params: Any = None, headers: Mapping[str, str] | None = None,
                   mailbox: str | None = None) -> Iterator[dict]:
        """Every page of a collection, following ``@odata.nextLink`` (headers are re-sent on each page)."""
        return iter_pages(self, path, params=params, headers=headers, mailbox=mailbox)

    def iter_items(self, path: str, **kw: Any) -> Iterator[dict]:
        """Every item of a collection, across pages."""
        for page in self.iter_pages(path, **kw):
            yield from page["value"]

    def delta(self, path_or_delta_link: str, *, params: Any = None, headers: Mapping[str, str] | None = None,
              mailbox: str | None = None) -> DeltaRound:
        """A delta round from a delta path (``/users/delta``) or a stored deltaLink; see :class:`DeltaRound`."""
        return DeltaRound(self, path_or_delta_link, params=params, headers=headers, mailbox=mailbox)

    def batch(self, requests: list[BatchRequest]) -> list[BatchResponse]:
        """Run requests through ``$batch`` (20 per call); 429/5xx items are re-sent alone, honouring their
        Retry-After. Answers in the order of ``requests``; failed items are reported, not raised."""
        return run_batch(self, requests)

    def send_unauthenticated(self, method: str, url: str, *, data: bytes | None = None,
                             headers: Mapping[str, str] | None = None) -> requests.Response:
        """A request WITHOUT the token (an Outlook upload session's opaque ``uploadUrl``), with the configured
        trust, timeout and retries of 429/503/504 and transient errors."""
        if urlsplit(url).scheme.lower() != "https":
            raise UnsafeLinkError(f"Refusing a non-https upload URL {url.split('?', 1)[0]}", code="unsafeLink")
        for attempt in range(self.policy.max_retries + 1):
            last = attempt == self.policy.max_retries
            try:
                response = self._http.request(method, url, data=data, headers=dict(headers or {}))
            except requests.RequestException as exc:
                if last or not is_transient(exc):
                    raise connection_error(exc, method, url, self._http.verify) from exc
                time.sleep(self.policy.backoff(attempt))
                continue
            if last or response.status_code not in RETRYABLE_STATUSES:
                return response
            time.sleep(self.policy.delay(attempt, response.headers.get("Retry-After")))
        raise AssertionError("unreachable")

    def _lacks_role(self, token: str, method: str, url: str) -> bool:
        """Whether ``token`` lacks every permission that the call needs (unknown calls: no)."""
        needed = permission_for(method, graph_path(url))
        if needed is None:
            return False
        try:
            roles = effective(_roles_of(token))
        except MalformedResponseError:
            return False
        return not ({needed[0], *needed[1]} & roles)

    def token_roles(self) -> list[str]:
        """The application permissions (``roles``) in the current token; the token is not verified here."""
        return _roles_of(self.tokens.get())


def _roles_of(token: str) -> list[str]:
    """The ``roles`` claim of an access token (not verified: Graph verifies it)."""
    try:
        payload = token.split(".")[1]
        claims = jsonlib.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise MalformedResponseError("The access token from Entra is not a JWT; cannot read its roles.",
                                     code="malformedToken") from exc
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return [str(r) for r in roles] if isinstance(roles, list) else []


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _json_object(response: requests.Response, url: str) -> dict:
    try:
        body = response.json()
    except ValueError as exc:
        raise MalformedResponseError(
            f"Microsoft Graph answered {url.split('?', 1)[0]} with something that is not JSON "
            f"(HTTP {response.status_code}, Content-Type {response.headers.get('Content-Type')!r}).",
            status=response.status_code) from exc
    if not isinstance(body, dict):
        raise MalformedResponseError(
            f"Microsoft Graph answered {url.split('?', 1)[0]} with JSON that is not an object.",
            status=response.status_code)
    return body
