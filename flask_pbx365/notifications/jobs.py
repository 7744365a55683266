"""The RQ job behind the webhook: turn accepted notifications into runs, and handle lifecycle events."""
from __future__ import annotations

import logging

from ..exceptions import PBX365Error
from ..runs import request_run
from .subscriptions import ensure_subscriptions, forget_subscription, renew_subscription

log = logging.getLogger(__name__)


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
