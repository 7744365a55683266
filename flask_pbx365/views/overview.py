"""The Overview tab, first and the landing page: the health summary (:mod:`flask_pbx365.health`), a fresh
connection test on demand, and the change-notification subscriptions with renew and recreate actions."""
from __future__ import annotations

from flask import abort, flash, redirect, url_for

from ..connection import test_connection
from ..exceptions import PBX365Error
from ..feature import Tab
from ..health import tenant_health
from ..notifications.subscriptions import (ensure_subscriptions, forget_subscription, list_subscriptions,
                                           renew_subscription)
from ..routing import Routes
from .admin import current_tenant, render_tab

routes = Routes()


@routes.get("/overview")
def overview():
    # Never calls Microsoft: an outage must not hang the page. "Check now" tests the connection.
    health = tenant_health(current_tenant())
    subscriptions = next((c["details"]["subscriptions"] for c in health["checks"] if c["name"] == "notifications"),
                         [])
    return render_tab("pbx365/overview.html", health=health, subscriptions=subscriptions)


@routes.post("/overview/check")
def check_now():
    result = test_connection(current_tenant())
    flash("Connection tested: a token was issued." if not result.get("error") else
          f"Connection tested: {result['error']}", "success" if not result.get("error") else "error")
    return redirect(url_for("pbx365_admin.overview"))


def _own_subscription(subscription_id: str) -> None:
    """404 for a subscription the current tenant does not have (another tenant's does not exist for its admin)."""
    if subscription_id not in {s["id"] for s in list_subscriptions(current_tenant())}:
        abort(404)


@routes.post("/overview/subscriptions/<subscription_id>/renew")
def renew(subscription_id: str):
    _own_subscription(subscription_id)
    try:
        renewed = renew_subscription(current_tenant(), subscription_id)
    except PBX365Error as exc:
        flash(f"Renewing failed: {exc}", "error")
    else:
        flash("Subscription renewed." if renewed else
              "Microsoft no longer knows this subscription: recreate it.", "success" if renewed else "error")
    return redirect(url_for("pbx365_admin.overview") + "#subscriptions")


@routes.post("/overview/subscriptions/<subscription_id>/recreate")
def recreate(subscription_id: str):
    _own_subscription(subscription_id)
    tenant = current_tenant()
    try:
        forget_subscription(tenant, subscription_id)
        ensure_subscriptions(tenant)
    except PBX365Error as exc:
        flash(f"Recreating failed: {exc}", "error")
    else:
        flash("Subscription recreated.", "success")
    return redirect(url_for("pbx365_admin.overview") + "#subscriptions")


TAB = Tab("overview", "Overview", routes)
