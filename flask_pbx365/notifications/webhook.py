"""``POST {PBX365_URL_PREFIX}/notifications/<tenant>``: Graph's validation handshake and its notifications.

Public (Graph calls it, no session, so no CSRF), hence strict: unknown tenant 404, a body that is not a
notification collection 400, no notification with a known subscription and matching ``clientState`` 401.
Accepted notifications are answered 202 at once and kept in Redis; one job per tenant at a time
(:func:`flask_pbx365.notifications.jobs.process_pending_notifications`) takes all that are pending, so a burst
becomes one run per kind. Neither ``clientState`` nor the body is ever logged.
"""
from __future__ import annotations

import hmac
import json
import logging

from flask import Response, abort, current_app, request

from ..models import NotificationSubscription
from ..routing import Routes
from ..runs.queue import get_queue
from ..state import get_state
from ..tenants import find_config
from .jobs import add_pending, process_pending_notifications
from .subscriptions import hash_client_state

routes = Routes()

log = logging.getLogger(__name__)

#: Largest notification body accepted, bytes (Graph batches at most a few hundred small notifications).
MAX_BODY = 1_000_000


def _accepted(tenant: str, note: dict) -> dict | None:
    """The work item for one notification, or None when its subscription or clientState does not match."""
    sid, client_state = note.get("subscriptionId"), note.get("clientState")
    if not isinstance(sid, str) or not isinstance(client_state, str):
        return None
    row = get_state().db.session.get(NotificationSubscription, sid)
    if row is None or row.tenant != tenant:
        return None
    if not hmac.compare_digest(row.client_state_hash, hash_client_state(client_state)):
        return None
    event = note.get("lifecycleEvent")
    return {"subscription_id": sid, "kind": row.kind, "lifecycle": event if isinstance(event, str) else None}


@routes.post("/notifications/<tenant>")
def graph_notifications(tenant: str):
    """Echo ``validationToken`` (text/plain), or queue the work for a batch of change/lifecycle notifications."""
    if find_config(tenant) is None:
        abort(404)
    token = request.args.get("validationToken")
    if token is not None:
        # Echoed as Graph demands; nosniff so a crafted token can never be rendered as HTML.
        return Response(token, status=200, content_type="text/plain; charset=utf-8",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
    if (request.content_length or 0) > MAX_BODY:
        abort(413)
    raw = request.stream.read(MAX_BODY + 1)  # a chunked body has no Content-Length: never read more than this
    if len(raw) > MAX_BODY:
        abort(413)
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    notes = body.get("value") if isinstance(body, dict) else None
    if not isinstance(notes, list) or not notes or not all(isinstance(n, dict) for n in notes):
        return Response("Expected a JSON notification collection {\"value\": [...]}.", status=400,
                        content_type="text/plain; charset=utf-8")
    items = [item for item in (_accepted(tenant, n) for n in notes) if item is not None]
    if len(items) < len(notes):
        log.warning("tenant %s: refused %d notification(s) with an unknown subscription or wrong clientState",
                    tenant, len(notes) - len(items))
    if not items:
        return Response(status=401)
    if add_pending(tenant, items):
        get_queue().enqueue(process_pending_notifications, tenant,
                            result_ttl=int(current_app.config["PBX365_JOB_RESULT_TTL"]),
                            description=f"pbx365 change notifications of {tenant}")
    return Response(status=202)
