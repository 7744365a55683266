"""The tenant's Graph subscriptions: which ones the settings call for, and creating, renewing and deleting them.

:func:`ensure_subscriptions` is idempotent and cheap when nothing is due (database reads only), so the scheduler
calls it every pass through :func:`scheduler_pass`.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask import current_app

from ..connection import client_options, credentials_for
from ..exceptions import NotFoundError, PBX365Error
from ..feature import Subscriptions
from ..graph import GraphClient
from ..models import NotificationSubscription, SyncRun, UserLink
from ..settings import get_settings
from ..state import get_state
from ..tenants import find_config

log = logging.getLogger(__name__)

#: For a subscription whose feature is gone: Outlook resources' lifetime (the shortest Graph allows for long).
DEFAULT_DECLARATION = Subscriptions(resources=lambda ctx: (), lifetime_minutes=4200)
#: Renew once less than this share of the lifetime is left.
RENEW_FRACTION = 0.5
#: Mailboxes watched per kind at most, so a large tenant cannot exhaust Graph's subscription quotas.
MAX_MAILBOXES = 100
#: Seconds a tenant whose subscription calls failed is left alone by the scheduler.
FAILURE_BACKOFF = 300


def hash_client_state(value: str) -> str:
    """The stored form of a ``clientState``."""
    return hashlib.sha256(value.encode()).hexdigest()


def notification_url(tenant: str) -> str:
    """``{portal}{PBX365_URL_PREFIX}/notifications/{tenant}``: where Graph posts the tenant's notifications."""
    portal = get_state().host.public_urls(tenant).portal.rstrip("/")
    return f"{portal}{current_app.config['PBX365_URL_PREFIX']}/notifications/{tenant}"


def _connected(tenant: str) -> bool:
    config = find_config(tenant)
    return bool(config and config.client_id and config.directory_id)


class SubscriptionContext:
    """What a feature's :attr:`~flask_pbx365.feature.Subscriptions.resources` reads to choose its resources."""

    def __init__(self, tenant: str, settings: dict):
        self.tenant = tenant
        self.settings = settings
        self._linked: list[str] | None = None

    def has_run(self, kind: str) -> bool:
        """True once the tenant has had a run of ``kind``."""
        return get_state().db.session.scalar(sa.select(SyncRun.id).where(
            SyncRun.tenant == self.tenant, SyncRun.kind == kind).limit(1)) is not None

    def linked_users(self) -> list[str]:
        """Object ids of the first :data:`MAX_MAILBOXES` active linked users (read once)."""
        if self._linked is None:
            self._linked = list(get_state().db.session.scalars(sa.select(UserLink.object_id).where(
                UserLink.tenant == self.tenant, UserLink.state == "active").order_by(UserLink.id)
                .limit(MAX_MAILBOXES)))
        return self._linked


def desired_resources(tenant: str) -> dict[str, str]:
    """Graph resource -> kind of run it triggers, from the switched-on features and the tenant's settings."""
    settings = get_settings(tenant)
    if not settings["notifications"]["enabled"] or not _connected(tenant):
        return {}
    ctx = SubscriptionContext(tenant, settings)
    wanted: dict[str, str] = {}
    for feature in get_state().features:
        if feature.subscriptions is not None:
            for resource in feature.subscriptions.resources(ctx):
                wanted.setdefault(resource, feature.name)
    return wanted


def _declaration(kind: str) -> Subscriptions:
    feature = get_state().feature(kind)
    if feature is None or feature.subscriptions is None:  # a feature switched off since: its rows get deleted
        return DEFAULT_DECLARATION
    return feature.subscriptions


def _graph_time(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _create(client: GraphClient, tenant: str, resource: str, kind: str, url: str) -> NotificationSubscription:
    client_state = secrets.token_urlsafe(32)
    declaration = _declaration(kind)
    expires = datetime.now(timezone.utc) + timedelta(minutes=declaration.lifetime_minutes)
    answer = client.post("/subscriptions", json={
        "changeType": declaration.change_type, "notificationUrl": url, "lifecycleNotificationUrl": url,
        "resource": resource, "expirationDateTime": _graph_time(expires), "clientState": client_state},
        expected=(201,)) or {}
    row = NotificationSubscription(id=answer["id"], tenant=tenant, kind=kind, resource=resource,
                                   notification_url=url, client_state_hash=hash_client_state(client_state),
                                   expires_at=expires)
    get_state().db.session.add(row)
    get_state().db.session.commit()
    return row


def renew(client: GraphClient, row: NotificationSubscription) -> bool:
    """Push the subscription's expiry out again; False (row deleted) when Graph no longer knows it."""
    expires = datetime.now(timezone.utc) + timedelta(minutes=_declaration(row.kind).lifetime_minutes)
    try:
        client.patch(f"/subscriptions/{row.id}", json={"expirationDateTime": _graph_time(expires)})
    except NotFoundError:
        get_state().db.session.delete(row)
        get_state().db.session.commit()
        return False
    row.expires_at = expires
    get_state().db.session.commit()
    return True


def _delete(client: GraphClient | None, row: NotificationSubscription) -> None:
    if client is not None:
        try:
            client.delete(f"/subscriptions/{row.id}")
        except NotFoundError:
            pass
    get_state().db.session.delete(row)
    get_state().db.session.commit()


def _due(row: NotificationSubscription, now: datetime) -> bool:
    return row.expires_at - now < timedelta(minutes=_declaration(row.kind).lifetime_minutes * RENEW_FRACTION)


def ensure_subscriptions(tenant: str) -> list[dict]:
    """Create, renew and delete the tenant's subscriptions so they match its settings; returns
    :func:`list_subscriptions`. Graph failures raise :class:`~flask_pbx365.exceptions.PBX365Error` subclasses."""
    state = get_state()
    session = state.db.session
    with state.redis().lock(f"pbx365:notifications:{tenant}:ensure", timeout=120, blocking_timeout=120):
        session.expire_all()
        wanted = desired_resources(tenant)
        url = notification_url(tenant) if wanted else ""
        now = datetime.now(timezone.utc)
        rows = list(session.scalars(sa.select(NotificationSubscription).where(
            NotificationSubscription.tenant == tenant)))
        stale = [r for r in rows if r.resource not in wanted or r.kind != wanted[r.resource]
                 or r.notification_url != url or r.expires_at <= now]
        keep = {r.resource: r for r in rows if r not in stale}
        missing = [res for res in wanted if res not in keep]
        renewals = [r for r in keep.values() if _due(r, now)]
        if not (stale or missing or renewals):
            return list_subscriptions(tenant)
        client = GraphClient(credentials_for(tenant), **client_options()) if _connected(tenant) else None
        try:
            for row in stale:
                _delete(client if row.expires_at > now else None, row)
            for row in renewals:
                if not renew(client, row):
                    missing.append(row.resource)
            for resource in missing:
                _create(client, tenant, resource, wanted[resource], url)
        finally:
            if client is not None:
                client.close()
    return list_subscriptions(tenant)


def forget_subscription(tenant: str, subscription_id: str) -> None:
    """Drop the local record of a subscription Graph removed (the next :func:`ensure_subscriptions` recreates it)."""
    session = get_state().db.session
    row = session.get(NotificationSubscription, subscription_id)
    if row is not None and row.tenant == tenant:
        session.delete(row)
        session.commit()


def renew_subscription(tenant: str, subscription_id: str) -> bool:
    """Renew (reauthorize) one subscription now; False when it is unknown here or to Graph."""
    row = get_state().db.session.get(NotificationSubscription, subscription_id)
    if row is None or row.tenant != tenant:
        return False
    with GraphClient(credentials_for(tenant), **client_options()) as client:
        return renew(client, row)


def list_subscriptions(tenant: str) -> list[dict]:
    """The tenant's subscriptions for ``status --json``: ``[{"resource", "expires", "id"}]``."""
    rows = get_state().db.session.scalars(sa.select(NotificationSubscription).where(
        NotificationSubscription.tenant == tenant).order_by(NotificationSubscription.resource))
    return [{"resource": r.resource, "expires": r.expires_at.isoformat(), "id": r.id} for r in rows]


def scheduler_pass(app) -> list[str]:
    """One scheduler pass: :func:`ensure_subscriptions` for every tenant; returns the tenants that failed.

    A failing tenant is logged and left alone for :data:`FAILURE_BACKOFF` seconds; the others go on.
    """
    state = get_state(app)
    redis = state.redis()
    failed: list[str] = []
    for host_tenant in state.host.list_tenants():
        tenant = host_tenant.key
        backoff = f"pbx365:notifications:{tenant}:backoff"
        if redis.exists(backoff):
            continue
        try:
            ensure_subscriptions(tenant)
        except PBX365Error as exc:
            state.db.session.rollback()
            log.warning("change notifications for tenant %s: %s", tenant, exc)
            redis.set(backoff, "1", ex=FAILURE_BACKOFF)
            failed.append(tenant)
    return failed
