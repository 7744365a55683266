"""The RQ job behind the webhook: turn accepted notifications into runs, and handle lifecycle events."""
from __future__ import annotations

import json
import logging

from ..exceptions import PBX365Error
from ..runs import request_run
from ..state import get_state
from .subscriptions import ensure_subscriptions, forget_subscription, renew_subscription

log = logging.getLogger(__name__)

_PENDING = "pbx365:notify:{tenant}:pending"   # a set of JSON work items not yet handled
_QUEUED = "pbx365:notify:{tenant}:queued"     # set while a job that will take them is queued
#: A lost job (worker killed before it started) no longer blocks new ones after this long, seconds.
QUEUED_TTL = 300


def add_pending(tenant: str, items: list[dict]) -> bool:
    """Keep ``items`` for the tenant's next notification job; True when the caller must enqueue that job (none
    is queued yet). A burst of notifications is so answered by one job, hence one run per kind."""
    redis = get_state().redis()
    redis.sadd(_PENDING.format(tenant=tenant), *(json.dumps(i, sort_keys=True) for i in items))
    return bool(redis.set(_QUEUED.format(tenant=tenant), "1", nx=True, ex=QUEUED_TTL))


def process_pending_notifications(tenant: str) -> list[str]:
    """The RQ job the webhook enqueues: take every pending work item of the tenant and handle them at once."""
    redis = get_state().redis()
    redis.delete(_QUEUED.format(tenant=tenant))  # first: items added from now on get a job of their own
    pipe = redis.pipeline()
    pipe.smembers(_PENDING.format(tenant=tenant))
    pipe.delete(_PENDING.format(tenant=tenant))
    raw, _ = pipe.execute()
    items = sorted((json.loads(r) for r in raw), key=lambda i: json.dumps(i, sort_keys=True))
    return process_notifications(tenant, items) if items else []


def process_notifications(tenant: str, items: list[dict]) -> list[str]:
    """Handle ``[{"subscription_id", "kind", "lifecycle"}]``; returns the run kinds requested.

    A change requests a run of its kind (joining one already queued or running). ``reauthorizationRequired``
    renews the subscription; ``subscriptionRemoved`` and ``missed`` recreate it and request a run, since changes
    may have been lost.
    """
    kinds: list[str] = []
    for item in items:
        event = item.get("lifecycle")
        if event == "reauthorizationRequired":
            if not renew_subscription(tenant, item["subscription_id"]):
                ensure_subscriptions(tenant)
            continue
        if event in ("subscriptionRemoved", "missed"):
            if event == "subscriptionRemoved":
                forget_subscription(tenant, item["subscription_id"])
            ensure_subscriptions(tenant)
        elif event:
            continue  # a lifecycle event this version does not know: nothing to do
        if item["kind"] not in kinds:
            kinds.append(item["kind"])
    requested = []
    for kind in kinds:
        try:
            request_run(tenant, kind, trigger="notification")
            requested.append(kind)
        except PBX365Error as exc:
            log.warning("tenant %s: change notification could not start a %s run: %s", tenant, kind, exc)
    return requested
