"""Fault injection and the request log: a WSGI middleware in front of every non-admin request.

Faults (``POST /_emulator/faults``): the oldest fault whose ``method`` and ``path`` regex match a request takes
it; it lets its first ``skip`` requests through, then applies itself to the next ``times`` ones and is used up.
A request taken by one fault does not count toward another's ``skip``. Admin calls (``/_emulator/...``) are
neither faulted nor logged; ``$batch`` sub-requests are both (the batch view dispatches them through this
middleware).
"""
from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable
from urllib.parse import unquote

from .graph_common import GRAPH_JSON

LOG_LIMIT = 200_000
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
            410: "Gone", 423: "Locked", 429: "Too Many Requests", 500: "Internal Server Error",
            501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
_CODES = {429: ("TooManyRequests", "Please retry again later."),
          500: ("InternalServerError", "An internal server error occurred."),
          502: ("BadGateway", "Bad gateway."),
          503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
          504: ("GatewayTimeout", "The gateway did not receive a timely response.")}


class FaultSpecError(ValueError):
    """The fault specification is invalid (the admin API answers 400 with this message)."""


@dataclass
class Fault:
    id: str
    path: re.Pattern
    method: str | None
    skip: int
    times: int
    status: int | None
    retry_after: Any
    body: Any
    delay_ms: int
    reset: str | None

    @classmethod
    def from_spec(cls, spec: dict) -> "Fault":
        if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
            raise FaultSpecError('A fault needs "path" (a regular expression).')
        try:
            pattern = re.compile(spec["path"])
        except re.error as exc:
            raise FaultSpecError(f"Invalid path regex: {exc}") from exc
        reset = spec.get("reset")
        if reset not in (None, "before", "after"):
            raise FaultSpecError('"reset" must be "before" or "after".')
        try:
            times, skip = int(spec.get("times", 1)), int(spec.get("skip", 0))
            status = int(spec["status"]) if spec.get("status") is not None else None
            delay = int(spec.get("delayMs", 0) or 0)
        except (TypeError, ValueError) as exc:
            raise FaultSpecError("times, skip, status and delayMs must be integers.") from exc
        if status is None and not reset and not delay and spec.get("body") is None:
            raise FaultSpecError('A fault needs at least one of "status", "reset", "delayMs" or "body".')
        return cls(str(uuid.uuid4()), pattern, (spec.get("method") or "").upper() or None, skip, times,
                   status if status is not None else (200 if spec.get("body") is not None else None),
                   spec.get("retryAfter"), spec.get("body"), delay, reset)


class ConnectionDropped(ConnectionResetError):
    """Raised to make werkzeug drop the client connection without an answer."""


class Traffic:
    """The faults and the request log, shared by every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.log: list[dict] = []

    def add_fault(self, spec: dict) -> str:
        fault = Fault.from_spec(spec)
        with self.lock:
            self.faults.append(fault)
        return fault.id

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take(self, method: str, target: str) -> Fault | None:
        """The fault to apply to this request, if any (consumes a skip or a time of the oldest match)."""
        with self.lock:
            for f in self.faults:
                if f.times <= 0 or (f.method and f.method != method) or not f.path.search(target):
                    continue
                if f.skip > 0:
                    f.skip -= 1
                    return None
                f.times -= 1
                return f
        return None

    def record(self, entry: dict) -> None:
        with self.lock:
            self.log.append(entry)
            if len(self.log) > LOG_LIMIT:
                del self.log[: len(self.log) - LOG_LIMIT]

    def entries(self) -> list[dict]:
        with self.lock:
            return list(self.log)

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()


def _drop(environ: dict) -> None:
    """Drop the client's TCP connection (RST); for a ``$batch`` sub-request, mark the outer request instead."""
    parent = environ.get("m365.parent")
    if parent is not None:
        parent["m365.drop"] = True
        return
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionDropped("connection dropped by an emulator fault")


def _fault_body(status: int, body: Any) -> bytes:
    if body is not None:
        return body.encode() if isinstance(body, str) else json.dumps(body).encode()
    code, message = _CODES.get(status, ("UnknownError" if status >= 500 else "BadRequest",
                                        _REASONS.get(status, "Injected fault.")))
    inner: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                             "request-id": str(uuid.uuid4())}
    if status == 429:
        inner.update({"code": "429", "message": "Please retry after", "status": "429"})
    return json.dumps({"error": {"code": code, "message": message, "innerError": inner}}).encode()


class TrafficMiddleware:
    """WSGI middleware applying :class:`Traffic` faults and writing the request log."""

    def __init__(self, app: Callable, traffic: Traffic):
        self.app = app
        self.traffic = traffic

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_emulator"):
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET").upper()
        query = unquote(environ.get("QUERY_STRING", ""))
        entry = {"method": method, "path": path, "query": query, "status": 0, "tenantId": None, "appId": None,
                 "at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")}
        fault = self.traffic.take(method, path + ("?" + query if query else ""))
        try:
            if fault and fault.reset == "before":
                self._log(entry, environ, 0)
                _drop(environ)
                return self._answer(start_response, 502, b"", {})
            if fault and fault.status is not None:
                if fault.delay_ms:
                    time.sleep(fault.delay_ms / 1000)
                headers = {"Content-Type": GRAPH_JSON, "request-id": str(uuid.uuid4())}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                self._log(entry, environ, 0 if fault.reset else fault.status)
                if fault.reset == "after":
                    _drop(environ)
                return self._answer(start_response, fault.status, _fault_body(fault.status, fault.body), headers)
            captured: dict[str, Any] = {}

            def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
                captured["status"], captured["headers"] = status, headers
                return lambda data: None

            body = b"".join(self.app(environ, capture))
            status = int(captured["status"].split()[0])
            if fault and fault.delay_ms:
                time.sleep(fault.delay_ms / 1000)
            dropped = bool(environ.get("m365.drop")) or bool(fault and fault.reset == "after")
            self._log(entry, environ, 0 if dropped else status)
            if dropped:
                _drop(environ)
                return self._answer(start_response, 502, b"", {})
            start_response(captured["status"], captured["headers"])
            return [body]
        finally:
            if entry["status"] == 0 and "logged" not in entry:
                self._log(entry, environ, 0)

    def _log(self, entry: dict, environ: dict, status: int) -> None:
        if "logged" in entry:
            return
        entry["logged"] = True
        rec = {k: v for k, v in entry.items() if k != "logged"}
        rec.update(status=status, tenantId=environ.get("m365.tenant_id"), appId=environ.get("m365.app_id"))
        self.traffic.record(rec)

    @staticmethod
    def _answer(start_response: Callable, status: int, body: bytes, headers: dict) -> list[bytes]:
        hdrs = [(k, v) for k, v in headers.items()] + [("Content-Length", str(len(body)))]
        start_response(f"{status} {_REASONS.get(status, 'Fault')}", hdrs)
        return [body]
