"""Who Teams presence covers, and where it cannot work at all.

It covers the tenant's actively linked users (user sync's links) but the opted-out ones. Microsoft 365 operated by
21Vianet has no presence API (its CSDL binds none): configured as ``china`` it is known up front; a ``custom``
cloud that turns out to lack it is remembered for a day from the answer (Graph's 400 "Resource not found for the
segment"), so nothing polls a cloud that cannot answer.
"""
from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa

from ..connection import client_options, credentials_for
from ..exceptions import FeatureUnavailableError, GraphError, PBX365Error
from ..graph import GraphClient
from ..models import UserLink
from ..settings import get_settings
from ..state import get_state
from ..tenants import find_config

KIND = "teams_presence"
UNAVAILABLE = ("Teams presence is not available in this Microsoft 365 cloud: Microsoft 365 operated by 21Vianet "
               "has no presence API. Calendar presence (Presence tab) still works.")
_UNAVAILABLE_KEY = "pbx365:teams-presence:unavailable:{tenant}"


def options(tenant: str) -> Mapping[str, Any]:
    """The tenant's ``teams_presence`` settings section."""
    return get_settings(tenant)["teams_presence"]


def unavailable_reason(tenant: str) -> str | None:
    """Why Teams presence cannot work in the tenant's cloud, or None."""
    config = find_config(tenant)
    if config is not None and config.cloud == "china":
        return UNAVAILABLE
    if get_state().redis().exists(_UNAVAILABLE_KEY.format(tenant=tenant)):
        return UNAVAILABLE
    return None


def check_available(tenant: str, exc: GraphError) -> None:
    """Raise :class:`FeatureUnavailableError` (and remember it) when ``exc`` says the cloud has no presence API."""
    if exc.status in (400, 404, 501) and ("segment" in str(exc).lower() or exc.status == 501):
        get_state().redis().set(_UNAVAILABLE_KEY.format(tenant=tenant), "1", ex=86400)
        raise FeatureUnavailableError(UNAVAILABLE, status=exc.status, code=exc.code,
                                      request_id=exc.request_id) from exc


def forget_unavailable(tenant: str) -> None:
    """Try the cloud again (after the Configure tab changed)."""
    get_state().redis().delete(_UNAVAILABLE_KEY.format(tenant=tenant))


def probe(tenant: str) -> dict[str, str]:
    """test-connection's check: ``{"teams_presence": reason}`` when the tenant's cloud has no presence API.

    A ``custom`` cloud is asked (one empty ``getPresencesByUserId``), and what it answers replaces what was
    remembered; a missing permission is left to the permission check.
    """
    config = find_config(tenant)
    if config is not None and config.cloud == "custom":
        forget_unavailable(tenant)
        try:
            with GraphClient(credentials_for(tenant), **client_options()) as client:
                client.post("/communications/getPresencesByUserId", {"ids": []}, idempotent=True)
        except GraphError as exc:
            try:
                check_available(tenant, exc)
            except FeatureUnavailableError as unavailable:
                return {"teams_presence": str(unavailable)}
        except PBX365Error:
            pass
    reason = unavailable_reason(tenant)
    return {"teams_presence": reason} if reason else {}


def linked_users(tenant: str, opt_out: list[str]) -> list[tuple[str, str]]:
    """``(object id, host user id)`` of the tenant's active links in its directory, opted-out users left out."""
    config = find_config(tenant)
    if config is None or not config.directory_id:
        return []
    skip = {oid.lower() for oid in opt_out}
    rows = get_state().db.session.execute(sa.select(UserLink.object_id, UserLink.host_user_id).where(
        UserLink.tenant == tenant, UserLink.state == "active",
        sa.func.lower(UserLink.directory_id) == config.directory_id.lower()).order_by(UserLink.id))
    return [(oid.lower(), hid) for oid, hid in rows if oid.lower() not in skip]


def link_of(tenant: str, host_user_id: str) -> str | None:
    """The object id the PBX user is actively linked to, or None."""
    config = find_config(tenant)
    if config is None or not config.directory_id:
        return None
    oid = get_state().db.session.scalar(sa.select(UserLink.object_id).where(
        UserLink.tenant == tenant, UserLink.host_user_id == str(host_user_id), UserLink.state == "active",
        sa.func.lower(UserLink.directory_id) == config.directory_id.lower()))
    return oid.lower() if oid else None
