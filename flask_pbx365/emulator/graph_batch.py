"""``POST /v1.0/$batch`` (json-batching): up to 20 requests, ``dependsOn``, per-item status.

Each sub-request is dispatched through the whole WSGI stack (fault injection, request log, authentication,
permissions, throttling), so a sub-request can be faulted, throttled (429 with ``Retry-After`` in its
headers) or denied on its own; dependents of a failed request get 424. The outer answer is 200 whenever the
batch itself parses.
"""
from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, request
from werkzeug.test import EnvironBuilder

from .graph_common import error_body, graph_context, graph_error, graph_json

batch_bp = Blueprint("m365_batch", __name__)
MAX_REQUESTS = 20
_ITEM_HEADERS = ("content-type", "retry-after", "location", "etag", "odata-version", "cache-control",
                 "x-ms-resource-unit", "x-ms-throttle-scope", "x-ms-throttle-information", "preference-applied")


def _bad(message: str) -> Exception:
    return graph_error(400, "BadRequest", message)


def _validate(payload: Any) -> list[dict]:
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise _bad("Invalid batch payload format.")
    reqs = payload["requests"]
    if not reqs:
        raise _bad("Invalid batch payload format.")
    if len(reqs) > MAX_REQUESTS:
        raise _bad(f"Too many requests in batch. Max {MAX_REQUESTS} requests are allowed.")
    seen: set[str] = set()
    for r in reqs:
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not r.get("id"):
            raise _bad("Each request in a batch needs a string 'id'.")
        if not isinstance(r.get("method"), str) or not isinstance(r.get("url"), str):
            raise _bad(f"Request '{r['id']}' needs 'method' and 'url'.")
        if r["id"].lower() in seen:
            raise _bad(f"Request id '{r['id']}' is duplicated: ids must be unique within a batch.")
        seen.add(r["id"].lower())
        if "body" in r and not any(k.lower() == "content-type" for k in (r.get("headers") or {})):
            raise _bad(f"Request '{r['id']}' has a body but no Content-Type header.")
    ids = {r["id"].lower() for r in reqs}
    for r in reqs:
        deps = r.get("dependsOn") or []
        if not isinstance(deps, list) or any(not isinstance(d, str) or d.lower() not in ids for d in deps):
            raise _bad(f"Request '{r['id']}' depends on an unknown request id.")
    return reqs


def _order(reqs: list[dict]) -> list[dict]:
    """Requests in an order where every dependency comes first (400 on a cycle)."""
    by_id = {r["id"].lower(): r for r in reqs}
    done: dict[str, dict] = {}
    visiting: set[str] = set()

    def visit(rid: str) -> None:
        if rid in done:
            return
        if rid in visiting:
            raise _bad("The dependsOn chain of the batch contains a cycle.")
        visiting.add(rid)
        for d in by_id[rid].get("dependsOn") or []:
            visit(d.lower())
        visiting.discard(rid)
        done[rid] = by_id[rid]

    for r in reqs:
        visit(r["id"].lower())
    return list(done.values())


def _dispatch(item: dict) -> dict:
    url = item["url"]
    if url.startswith(("http://", "https://")):
        raise _bad(f"Request '{item['id']}': the url must be relative to /v1.0.")
    parts = urlsplit("/" + url.lstrip("/"))
    path = parts.path if parts.path.startswith("/v1.0/") else "/v1.0" + parts.path
    headers = {k: v for k, v in (item.get("headers") or {}).items()}
    for name in ("Authorization", "client-request-id"):
        if name in request.headers and name not in headers:
            headers[name] = request.headers[name]
    body = item.get("body")
    data: bytes | None = None
    if body is not None:
        ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if "json" in ctype:
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            try:
                data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            except ValueError:
                data = body.encode()
    builder = EnvironBuilder(path=path, query_string=parts.query, method=item["method"].upper(), headers=headers,
                             data=data, base_url=request.host_url,
                             environ_overrides={"REMOTE_ADDR": request.remote_addr or "127.0.0.1"})
    environ = builder.get_environ()
    environ["m365.parent"] = request.environ
    captured: dict = {}

    def start_response(status: str, hdrs: list, exc_info: Any = None):
        captured["status"], captured["headers"] = status, hdrs
        return lambda _data: None

    raw = b"".join(current_app.wsgi_app(environ, start_response))
    status = int(captured["status"].split()[0])
    out_headers = {k: v for k, v in captured["headers"] if k.lower() in _ITEM_HEADERS}
    result: dict = {"id": item["id"], "status": status, "headers": out_headers}
    if raw:
        ctype = next((v for k, v in captured["headers"] if k.lower() == "content-type"), "")
        if "json" in ctype:
            try:
                result["body"] = json.loads(raw)
            except ValueError:
                result["body"] = raw.decode("utf-8", "replace")
        elif ctype.startswith("text/"):
            result["body"] = raw.decode("utf-8", "replace")
        else:
            result["body"] = base64.b64encode(raw).decode()
    return result


@batch_bp.post("/v1.0/$batch")
def batch() -> Response:
    graph_context()  # the batch itself needs a valid token (and is logged with its tenant and app)
    reqs = _order(_validate(request.get_json(silent=True)))
    failed: set[str] = set()
    responses: list[dict] = []
    for item in reqs:
        deps = [d.lower() for d in item.get("dependsOn") or []]
        if any(d in failed for d in deps):
            failed.add(item["id"].lower())
            responses.append({"id": item["id"], "status": 424, "headers": {"Content-Type": "application/json"},
                              "body": error_body("FailedDependency", "The request depends on a request that "
                                                 "failed.")})
            continue
        result = _dispatch(item)
        if request.environ.get("m365.drop"):
            return Response(b"", status=502)  # the traffic middleware drops the connection
        if not 200 <= result["status"] < 300:
            failed.add(item["id"].lower())
        responses.append(result)
    return graph_json({"responses": responses})
