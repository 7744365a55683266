"""Teams presence: ``/users/{id}/presence``, ``getPresencesByUserId``, ``setPresence``, ``clearPresence``,
``setUserPreferredPresence`` and ``clearUserPreferredPresence``, aggregated as Microsoft documents it.

What this relies on (microsoft-graph-docs-contrib, api-reference/v1.0/api/presence-*.md and
cloudcommunications-getpresencesbyuserid.md):

- ``POST /communications/getPresencesByUserId`` ``{"ids": [...]}``: application permission Presence.Read.All
  (or Presence.ReadWrite.All); at most 650 ids per request; at most 1,500 requests per 30 seconds per application
  per tenant. ``GET /users/{id}/presence``: the same permissions.
- ``POST /users/{id}/presence/setPresence``: application permission Presence.ReadWrite.All only; ``sessionId`` is
  the application's id; supported availability/activity pairs Available/Available, Busy/InACall,
  Busy/InAConferenceCall, Away/Away; ``expirationDuration`` PT5M to PT4H, 5 minutes when absent; an expired
  session is gone (the user is Offline when it was the only one).
- ``clearPresence`` ``{"sessionId"}``: 200, or 404 when the session does not exist.
- ``setUserPreferredPresence``: Presence.ReadWrite.All; pairs Available/Available, Busy/Busy,
  DoNotDisturb/DoNotDisturb, BeRightBack/BeRightBack, Away/Away, Offline/OffWork; default expiration 1 day for
  DoNotDisturb and Busy, 7 days otherwise; it shows only while at least one presence session exists.
- Aggregation: the user-configured (preferred) presence overrides the sessions; among sessions DoNotDisturb >
  Busy > Available > Away (BeRightBack ranked with Away, just above it).
- National clouds: Global and US Government L4/L5 have the presence API (their CSDL binds it); 21Vianet does
  not, so a ``china`` tenant answers 400 "Resource not found for the segment", as Graph does for an unbound one.

Between sessions of equal rank the one set last shows (Microsoft does not document a tie-break).
Not modelled: the staged fade of an idle ``Available`` session to ``AvailableInactive`` and ``Away``.

The user's own Teams client is one more session (``teams-client``), set through the admin API
``PUT /_emulator/tenants/{tid}/users/{id}/teams-presence``; ``Offline`` there means the client is signed out.
"""
from __future__ import annotations

import math
import re
import threading
import time
from datetime import datetime, timedelta, timezone

from flask import Blueprint, current_app, request

from .graph_common import (base_url, graph_context, graph_error, graph_json, require_permission, resolve_user,
                           store)
from .store import Tenant

presence_bp = Blueprint("m365_presence", __name__)

MAX_IDS = 650
#: Documented request rate of the presence API: 1,500 requests per 30 s per application per tenant.
RATE_REQUESTS, RATE_WINDOW = 1500, 30.0
CLIENT_SESSION = "teams-client"
APP_PAIRS = {("Available", "Available"), ("Busy", "InACall"), ("Busy", "InAConferenceCall"), ("Away", "Away")}
PREFERRED_PAIRS = {("Available", "Available"), ("Busy", "Busy"), ("DoNotDisturb", "DoNotDisturb"),
                   ("BeRightBack", "BeRightBack"), ("Away", "Away"), ("Offline", "OffWork")}
#: What a Teams client may report (availability values of the presence resource).
AVAILABILITIES = ("Available", "AvailableIdle", "Away", "BeRightBack", "Busy", "BusyIdle", "DoNotDisturb",
                  "Offline", "PresenceUnknown")
RANK = {"DoNotDisturb": 5, "Busy": 4, "BusyIdle": 4, "Available": 3, "AvailableIdle": 3, "BeRightBack": 2,
        "Away": 1}
READ = ("Presence.Read.All", "Presence.ReadWrite.All")
WRITE = ("Presence.ReadWrite.All",)
_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")


class _RateLimit:
    """A sliding window of request times per (tenant, app): 429 with Retry-After beyond the documented rate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: dict[tuple[str, str], list[float]] = {}

    def take(self, tenant: Tenant, app_id: str) -> float:
        limit = int((tenant.throttle or {}).get("presenceRequests", RATE_REQUESTS))
        window = float((tenant.throttle or {}).get("presenceWindowSeconds", RATE_WINDOW))
        now = time.monotonic()
        with self._lock:
            times = [t for t in self._times.get((tenant.id, app_id), []) if now - t < window]
            if len(times) >= limit:
                self._times[(tenant.id, app_id)] = times
                return window - (now - times[0])
            times.append(now)
            self._times[(tenant.id, app_id)] = times
            return 0.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def parse_duration(value: str) -> timedelta:
    """An ISO 8601 duration of hours/minutes/seconds; ``ValueError`` otherwise."""
    match = _DURATION.match(value or "")
    if not match or not any(match.groups()):
        raise ValueError(value)
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def presence_record(tenant: Tenant, user_id: str) -> dict:
    """The user's stored presence: ``{"sessions": {id: {...}}, "preferred": {...} | None}`` (hold the lock)."""
    book = tenant.extra.setdefault("presence", {})
    return book.setdefault(user_id, {"sessions": {}, "preferred": None})


def _live(record: dict, now: datetime) -> dict[str, dict]:
    for sid in [s for s, session in record["sessions"].items()
                if session.get("expiresAt") is not None and session["expiresAt"] <= now]:
        del record["sessions"][sid]
    preferred = record.get("preferred")
    if preferred and preferred["expiresAt"] <= now:
        record["preferred"] = None
    return record["sessions"]


def aggregate(tenant: Tenant, user_id: str) -> tuple[str, str]:
    """The user's (availability, activity) as Graph reports it now."""
    record = presence_record(tenant, user_id)
    sessions = _live(record, _now())
    if not sessions:
        return "Offline", "Offline"
    if record.get("preferred"):
        return record["preferred"]["availability"], record["preferred"]["activity"]
    best = max(sessions.values(), key=lambda s: (RANK.get(s["availability"], 0), s["setAt"]))
    return best["availability"], best["activity"]


def presence_view(tenant: Tenant, user_id: str) -> dict:
    availability, activity = aggregate(tenant, user_id)
    return {"id": user_id, "availability": availability, "activity": activity}


def admin_view(tenant: Tenant, user_id: str) -> dict:
    """The admin API's answer: the Graph presence plus the application sessions (and the preferred presence)."""
    view = presence_view(tenant, user_id)
    record = presence_record(tenant, user_id)
    view["sessions"] = [{"id": sid, "availability": s["availability"], "activity": s["activity"],
                         "expiresAt": _iso(s["expiresAt"])}
                        for sid, s in sorted(record["sessions"].items()) if sid != CLIENT_SESSION]
    client = record["sessions"].get(CLIENT_SESSION)
    view["client"] = ({"availability": client["availability"], "activity": client["activity"]}
                      if client else None)
    preferred = record.get("preferred")
    view["preferred"] = ({"availability": preferred["availability"], "activity": preferred["activity"],
                          "expiresAt": _iso(preferred["expiresAt"])} if preferred else None)
    return view


def set_client_presence(tenant: Tenant, user_id: str, availability: str, activity: str) -> None:
    """What the user's own Teams client reports (``Offline``: the client signed out). Hold the lock."""
    record = presence_record(tenant, user_id)
    if availability == "Offline":
        record["sessions"].pop(CLIENT_SESSION, None)
    else:
        record["sessions"][CLIENT_SESSION] = {"availability": availability, "activity": activity or availability,
                                              "expiresAt": None, "setAt": time.monotonic()}


# --- Graph --------------------------------------------------------------------------------------------------------


def _presence_api() -> Tenant:
    """The caller's tenant, once the cloud has the API and the rate allows the request."""
    ctx = graph_context()
    if ctx.tenant.cloud == "china":
        segment = request.path.rstrip("/").rsplit("/", 1)[-1]
        raise graph_error(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
    wait = current_app.extensions.setdefault("m365_presence_rate", _RateLimit()).take(ctx.tenant, ctx.app_id)
    if wait > 0:
        raise graph_error(429, "TooManyRequests", "Too many requests.",
                          headers={"Retry-After": str(max(1, math.ceil(wait)))})
    return ctx.tenant


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise graph_error(400, "BadRequest", "The request body must be a JSON object.")
    return body


def _pair(body: dict, allowed: set[tuple[str, str]]) -> tuple[str, str]:
    pair = (body.get("availability"), body.get("activity"))
    if pair not in allowed:
        raise graph_error(400, "BadRequest", f"The availability/activity pair {pair[0]}/{pair[1]} is not supported; "
                          f"use one of {', '.join(a + '/' + b for a, b in sorted(allowed))}.")
    return pair  # type: ignore[return-value]


def _expiry(body: dict, default: timedelta, low: timedelta | None, high: timedelta | None) -> datetime:
    raw = body.get("expirationDuration")
    if raw is None:
        return _now() + default
    try:
        duration = parse_duration(raw)
    except ValueError as exc:
        raise graph_error(400, "BadRequest", f"expirationDuration {raw!r} is not an ISO 8601 duration.") from exc
    if (low and duration < low) or (high and duration > high):
        raise graph_error(400, "BadRequest", "expirationDuration must be between PT5M and PT4H.")
    return _now() + duration


@presence_bp.get("/v1.0/users/<uid>/presence")
@presence_bp.get("/v1.0/communications/presences/<uid>")
def get_presence(uid: str):
    require_permission(*READ)
    tenant = _presence_api()
    with store().lock:
        user = resolve_user(tenant, uid)
        view = presence_view(tenant, user["id"])
    return graph_json({"@odata.context": f"{base_url()}/v1.0/$metadata#users('{user['id']}')/presence/$entity",
                       **view})


@presence_bp.post("/v1.0/communications/getPresencesByUserId")
def get_presences_by_user_id():
    require_permission(*READ)
    tenant = _presence_api()
    ids = _body().get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise graph_error(400, "BadRequest", "ids must be a collection of user object ids.")
    if len(ids) > MAX_IDS:
        raise graph_error(400, "BadRequest", f"The number of ids ({len(ids)}) exceeds the maximum of {MAX_IDS}.")
    with store().lock:
        value = []
        for oid in dict.fromkeys(i.lower() for i in ids):
            user = tenant.users.get(oid)
            if user is None or user.get("_deleted"):
                value.append({"id": oid, "availability": "PresenceUnknown", "activity": "PresenceUnknown"})
            else:
                value.append(presence_view(tenant, user["id"]))
    return graph_json({"@odata.context": f"{base_url()}/v1.0/$metadata#Collection(microsoft.graph.presence)",
                       "value": value})


@presence_bp.post("/v1.0/users/<uid>/presence/setPresence")
def set_presence(uid: str):
    ctx = graph_context()
    require_permission(*WRITE)
    tenant = _presence_api()
    body = _body()
    if (body.get("sessionId") or "").lower() != ctx.app_id.lower():
        raise graph_error(400, "BadRequest", "sessionId must be the application's id.")
    availability, activity = _pair(body, APP_PAIRS)
    expires = _expiry(body, timedelta(minutes=5), timedelta(minutes=5), timedelta(hours=4))
    with store().lock:
        user = resolve_user(tenant, uid)
        record = presence_record(tenant, user["id"])
        record["sessions"][ctx.app_id.lower()] = {"availability": availability, "activity": activity,
                                                  "expiresAt": expires, "setAt": time.monotonic()}
    return current_app.response_class(status=200)


@presence_bp.post("/v1.0/users/<uid>/presence/clearPresence")
def clear_presence(uid: str):
    require_permission(*WRITE)
    tenant = _presence_api()
    session_id = str(_body().get("sessionId") or "").lower()
    with store().lock:
        user = resolve_user(tenant, uid)
        sessions = _live(presence_record(tenant, user["id"]), _now())
        if session_id == CLIENT_SESSION or sessions.pop(session_id, None) is None:
            raise graph_error(404, "NotFound", f"The presence session {session_id!r} does not exist.")
    return current_app.response_class(status=200)


@presence_bp.post("/v1.0/users/<uid>/presence/setUserPreferredPresence")
def set_preferred_presence(uid: str):
    require_permission(*WRITE)
    tenant = _presence_api()
    body = _body()
    availability, activity = _pair(body, PREFERRED_PAIRS)
    default = timedelta(days=1) if availability in ("DoNotDisturb", "Busy") else timedelta(days=7)
    expires = _expiry(body, default, None, None)
    with store().lock:
        user = resolve_user(tenant, uid)
        presence_record(tenant, user["id"])["preferred"] = {"availability": availability, "activity": activity,
                                                            "expiresAt": expires}
    return current_app.response_class(status=200)


@presence_bp.post("/v1.0/users/<uid>/presence/clearUserPreferredPresence")
def clear_preferred_presence(uid: str):
    require_permission(*WRITE)
    tenant = _presence_api()
    with store().lock:
        user = resolve_user(tenant, uid)
        presence_record(tenant, user["id"])["preferred"] = None
    return current_app.response_class(status=200)
