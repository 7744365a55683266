"""JSON ``$batch``: up to 20 requests per call, per-item retry of throttled items, ``dependsOn`` kept."""
from __future__ import annotations

import base64
import binascii
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import GraphError, MalformedResponseError
from .errors import error_for
from .retry import NOT_PROCESSED_STATUSES, RETRYABLE_STATUSES, header

if TYPE_CHECKING:
    from .client import GraphClient

logger = logging.getLogger("flask_pbx365.graph")

MAX_BATCH = 20  # Graph's limit per $batch call


@dataclass
class BatchRequest:
    """One sub-request. ``url`` is relative to ``/v1.0`` (``/users/{id}/photo/$value``)."""

    id: str
    method: str
    url: str
    body: Any = None
    headers: dict[str, str] | None = None
    depends_on: list[str] | None = None

    def to_json(self, keep_depends_on: set[str]) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.id, "method": self.method.upper(),
                                "url": self.url if self.url.startswith("/") else "/" + self.url}
        headers = dict(self.headers or {})
        if self.body is not None:
            item["body"] = self.body
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"  # Graph requires it whenever a body is present
        if headers:
            item["headers"] = headers
        deps = [d for d in (self.depends_on or []) if d.lower() in keep_depends_on]
        if deps:
            item["dependsOn"] = deps
        return item


@dataclass
class BatchResponse:
    """One sub-request's answer. ``body`` is parsed JSON, or bytes for binary content (photos)."""

    id: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    request: BatchRequest | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self) -> GraphError | None:
        """The domain exception this answer stands for (PermissionMissingError, NotFoundError...), or None."""
        if self.ok:
            return None
        method, url = (self.request.method, self.request.url) if self.request else ("GET", "")
        return error_for(self.status, self.body, self.headers, method.upper(), url)

    def raise_for_status(self) -> None:
        error = self.error()
        if error is not None:
            raise error


def _decode_body(body: Any, headers: dict[str, str]) -> Any:
    content_type = (header(headers, "Content-Type") or "").lower()
    if not isinstance(body, str) or not content_type or "json" in content_type or content_type.startswith("text/"):
        return body
    try:  # binary bodies come base64-encoded
        return base64.b64decode(body.replace("-", "+").replace("_", "/") + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return body


def _check_ids(requests: list[BatchRequest]) -> None:
    seen: set[str] = set()
    for request in requests:
        key = request.id.lower()
        if key in seen:
            raise ValueError(f"Duplicate batch request id {request.id!r} (ids are case-insensitive).")
        for dep in request.depends_on or []:
            if dep.lower() not in seen:
                raise ValueError(f"Batch request {request.id!r} depends on {dep!r}, which must come before it.")
        seen.add(key)


def _retryable(request: BatchRequest, status: int) -> bool:
    return status in RETRYABLE_STATUSES and (request.method.upper() != "POST" or status in NOT_PROCESSED_STATUSES)


def _send_chunk(client: "GraphClient", to_send: list[BatchRequest]) -> dict[str, BatchResponse]:
    in_batch = {r.id.lower() for r in to_send}
    payload = {"requests": [r.to_json(in_batch) for r in to_send]}
    idempotent = all(r.method.upper() == "GET" for r in to_send)
    answer = client._checked("POST", client.url_for("/$batch"), (200,), json=payload, idempotent=idempotent)
    try:
        responses = answer.json()["responses"]
        by_id = {str(item["id"]).lower(): item for item in responses}
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedResponseError("Microsoft Graph's $batch answer has no valid 'responses' list.") from exc
    result: dict[str, BatchResponse] = {}
    for request in to_send:
        item = by_id.get(request.id.lower())
        if not isinstance(item, dict) or not isinstance(item.get("status"), int):
            raise MalformedResponseError(f"Microsoft Graph's $batch answer lacks the response to {request.id!r}.")
        headers = {str(k): str(v) for k, v in (item.get("headers") or {}).items()}
        result[request.id.lower()] = BatchResponse(request.id, item["status"], headers,
                                                   _decode_body(item.get("body"), headers), request)
    return result


def run_batch(client: "GraphClient", requests: list[BatchRequest]) -> list[BatchResponse]:
    """See :meth:`GraphClient.batch`."""
    _check_ids(requests)
    done: dict[str, BatchResponse] = {}
    policy = client.policy
    for start in range(0, len(requests), MAX_BATCH):
        pending = requests[start:start + MAX_BATCH]
        attempt = 0
        refreshed = False
        while pending:
            to_send = []
            for request in pending:
                failed = [d for d in request.depends_on or [] if d.lower() in done and not done[d.lower()].ok]
                if failed:
                    done[request.id.lower()] = BatchResponse(request.id, 424, {}, {"error": {
                        "code": "FailedDependency", "message": f"Depends on failed request {failed[0]!r}"}},
                        request)
                else:
                    to_send.append(request)
            if not to_send:
                break
            answers = _send_chunk(client, to_send)
            can_retry = attempt < policy.max_retries
            retry = {r.id.lower() for r in to_send if can_retry and _retryable(r, answers[r.id.lower()].status)}
            expired = {r.id.lower() for r in to_send if answers[r.id.lower()].status == 401}
            if expired and not refreshed:
                # The token expired between the batch's acceptance and its items (as for a single request):
                # a new token, and those items once more.
                logger.info("$batch: %d items answered 401: acquiring a new token and retrying them once",
                            len(expired))
                client.tokens.invalidate(client.tokens.get())
                refreshed = True
                retry |= expired
            changed = True
            while changed:  # dependants that failed only because their dependency was throttled go again too
                changed = False
                for r in to_send:
                    key = r.id.lower()
                    if (key not in retry and answers[key].status == 424
                            and any(d.lower() in retry for d in r.depends_on or [])):
                        retry.add(key)
                        changed = True
            for r in to_send:
                if r.id.lower() not in retry:
                    done[r.id.lower()] = answers[r.id.lower()]
            pending = [r for r in to_send if r.id.lower() in retry]
            if pending:
                delay = max(policy.delay(attempt, header(answers[r.id.lower()].headers, "Retry-After"))
                            for r in pending)
                logger.info("$batch: %d of %d items throttled; retry %d in %.2fs", len(pending), len(to_send),
                            attempt + 1, delay)
                time.sleep(delay)
                attempt += 1
    return [done[r.id.lower()] for r in requests]
