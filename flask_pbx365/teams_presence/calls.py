"""PBX → Teams: while a user's desk phone rings or is on a call, Teams shows them *Busy, In a call*.

The host reports each change with :func:`call_state_changed`, in its own transaction. Once that commits, one job
per tenant (:func:`push_call_states`) is queued unless one is already waiting: it sends every user's pending
change at once through ``$batch`` (20 per request), so a burst of calls is a handful of requests and a user whose
phone rang and stopped before the job ran costs nothing. A call sets the application's presence session
(``setPresence``: ``sessionId`` is the app's client id, ``Busy``/``InACall``) for
``PBX365_TEAMS_SESSION_MINUTES``; the scheduler renews it while the call lasts (asking the host first when it
has ``get_call_state``), and hang-up clears it (``clearPresence``). Teams' own aggregation then decides what
people see: the user's preferred presence wins.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask import Flask, current_app

from ..connection import client_options, credentials_for
from ..exceptions import ConfigurationError, GraphError, NotFoundError, PBX365Error
from ..graph import GraphClient
from ..graph.batch import BatchRequest
from ..host import CALL_STATES
from ..models import TeamsPresenceState
from ..runs.queue import after_commit, get_queue
from ..state import get_state
from ..tenants import find_config
from .rules import OWN_SESSION
from .scope import link_of, options, unavailable_reason

log = logging.getLogger("flask_pbx365.teams_presence")

_WAITING = "pbx365:teams-push:{tenant}"
_BACKOFF = "pbx365:teams-push-backoff:{tenant}"
#: Seconds a tenant's pushes rest after Graph refused them (a missing permission must not become a request storm).
BACKOFF_SECONDS = 60
CHUNK = 500  # users per database read of the push job


def _now() -> datetime:
    return datetime.now(timezone.utc)


def pushing(tenant: str) -> bool:
    """Whether PBX → Teams is on for the tenant (and its cloud has the presence API)."""
    opts = options(tenant)
    return bool(opts["enabled"] and opts["to_teams"]) and unavailable_reason(tenant) is None


def call_state_changed(tenant: str, user_id: str, state: str) -> bool:
    """The host's report that PBX user ``user_id``'s phone is now ``idle``, ``ringing`` or ``on_call``.

    Recorded in the caller's ``db.session`` transaction; Teams is updated by a job queued once it commits.
    Returns False (and records nothing) when PBX → Teams is off for the tenant, or the user is not linked to
    Microsoft 365 or opted out.
    """
    if state not in CALL_STATES:
        raise ConfigurationError(f"Unknown call state {state!r}: use one of {', '.join(CALL_STATES)}.")
    if not pushing(tenant):
        return False
    oid = link_of(tenant, user_id)
    if oid is None or oid in {o.lower() for o in options(tenant)["opt_out"]}:
        return False
    session = get_state().db.session
    row = session.scalar(sa.select(TeamsPresenceState).where(TeamsPresenceState.tenant == tenant,
                                                             TeamsPresenceState.host_user_id == str(user_id)))
    if row is None:
        row = TeamsPresenceState(tenant=tenant, host_user_id=str(user_id), object_id=oid, call_state="idle")
        session.add(row)
    row.object_id = oid
    if row.call_state != state:
        row.call_state, row.call_changed_at = state, _now()
    session.flush()
    after_commit(lambda: request_push(tenant), f"queueing the Teams presence push of tenant {tenant}")
    return True


def request_push(tenant: str) -> bool:
    """Queue the tenant's push job unless one is already waiting; True when it was queued."""
    redis = get_state().redis()
    if not redis.set(_WAITING.format(tenant=tenant), "1", nx=True, ex=120):
        return False
    cfg = current_app.config
    get_queue().enqueue(push_call_states, tenant, job_timeout=int(cfg["PBX365_JOB_TIMEOUT"]),
                        result_ttl=int(cfg["PBX365_JOB_RESULT_TTL"]),
                        description=f"pbx365 Teams call presence of {tenant}")
    return True


def _session_minutes() -> int:
    return min(240, max(5, int(current_app.config["PBX365_TEAMS_SESSION_MINUTES"])))


def _due(tenant: str | None, now: datetime) -> sa.Select:
    """Rows whose Teams session is not what the phone says: a call without a live session (or one ending within
    ``PBX365_TEAMS_RENEW_MINUTES``), or a session left after the call."""
    renew_before = now + timedelta(minutes=int(current_app.config["PBX365_TEAMS_RENEW_MINUTES"]))
    on_call = TeamsPresenceState.call_state != "idle"
    query = sa.select(TeamsPresenceState).where(sa.or_(
        sa.and_(on_call, sa.or_(TeamsPresenceState.session_expires_at.is_(None),
                                TeamsPresenceState.session_expires_at < renew_before)),
        sa.and_(~on_call, TeamsPresenceState.session_expires_at.is_not(None))))
    return query if tenant is None else query.where(TeamsPresenceState.tenant == tenant)


def push_call_states(tenant: str) -> int:
    """RQ job: bring every pending user of ``tenant`` to Teams; returns how many sessions were set or cleared."""
    state = get_state()
    redis = state.redis()
    redis.delete(_WAITING.format(tenant=tenant))  # a change from now on queues another job
    session = state.db.session
    if find_config(tenant) is None or unavailable_reason(tenant):
        redis.set(_BACKOFF.format(tenant=tenant), "1", ex=BACKOFF_SECONDS)  # nothing can be sent: rest
        return 0
    on = pushing(tenant)
    opted_out = {o.lower() for o in options(tenant)["opt_out"]}
    done, after_id = 0, 0
    with GraphClient(credentials_for(tenant), **client_options()) as client:
        while True:
            rows = list(session.scalars(_due(tenant, _now()).where(TeamsPresenceState.id > after_id)
                                        .order_by(TeamsPresenceState.id).limit(CHUNK)))
            if not rows:
                break
            after_id = rows[-1].id
            done += _push(client, tenant, rows, on, opted_out)
            session.commit()
    return done


def _wanted(tenant: str, row: TeamsPresenceState, on: bool, now: datetime) -> bool:
    """Whether the user should show *In a call* now."""
    if not on:
        row.call_state = "idle"  # PBX → Teams switched off (or the user opted out): only clearing is left
        return False
    if row.call_state == "idle":
        return False
    longest = timedelta(hours=float(current_app.config["PBX365_TEAMS_MAX_CALL_HOURS"]))
    if row.call_changed_at is not None and now - row.call_changed_at > longest:
        log.warning("tenant %s: user %s has been on a call for over %s; ending its Teams session", tenant,
                    row.host_user_id, longest)
        row.call_state = "idle"
        return False
    if row.session_expires_at is not None:  # a renewal: ask the host, when it can tell, whether the call goes on
        query = getattr(get_state().host, "get_call_state", None)
        if callable(query):
            try:
                row.call_state = query(tenant, row.host_user_id)
            except PBX365Error as exc:
                log.warning("tenant %s: could not read the call state of %s: %s", tenant, row.host_user_id, exc)
        return row.call_state != "idle"
    return True


def _push(client: GraphClient, tenant: str, rows: list[TeamsPresenceState], on: bool, opted_out: set[str]) -> int:
    now = _now()
    minutes = _session_minutes()
    app_id = client.credentials.client_id
    requests, wanted = [], {}
    for row in rows:
        wanted[row.id] = _wanted(tenant, row, on and row.object_id not in opted_out, now)
        path = f"/users/{row.object_id}/presence/"
        if wanted[row.id]:
            availability, activity = OWN_SESSION
            requests.append(BatchRequest(str(row.id), "POST", path + "setPresence", {
                "sessionId": app_id, "availability": availability, "activity": activity,
                "expirationDuration": f"PT{minutes}M"}))
        elif row.session_expires_at is not None:
            requests.append(BatchRequest(str(row.id), "POST", path + "clearPresence", {"sessionId": app_id}))
    answers = {answer.request.id: answer for answer in client.batch(requests) if answer.request} if requests else {}
    by_id = {str(row.id): row for row in rows}
    refused = False
    for key, answer in answers.items():
        row = by_id[key]
        error = answer.error()
        if error is None or (isinstance(error, NotFoundError) and not wanted[row.id]):
            row.session_expires_at = now + timedelta(minutes=minutes) if wanted[row.id] else None
            row.push_error = None
        else:
            row.push_error = _explain(error)
            refused = True
    if refused:
        get_state().redis().set(_BACKOFF.format(tenant=tenant), "1", ex=BACKOFF_SECONDS)
    return sum(1 for a in answers.values() if a.ok)


def _explain(error: GraphError) -> str:
    text = f"Teams did not take the call presence: {error}"
    if error.status == 403:
        text += " Grant the application permission Presence.ReadWrite.All (Configure tab, then admin consent)."
    return text[:2000]


def renew_due(app: Flask) -> list[str]:
    """Scheduler pass: queue the push job of every tenant with a session to renew, set or clear; returns them."""
    state = get_state(app)
    redis = state.redis()
    tenants = sorted(set(state.db.session.scalars(
        _due(None, _now()).with_only_columns(TeamsPresenceState.tenant).distinct())))
    queued = []
    for tenant in tenants:
        if redis.exists(_BACKOFF.format(tenant=tenant)):
            continue
        try:
            if request_push(tenant):
                queued.append(tenant)
        except PBX365Error as exc:
            log.warning("tenant %s: Teams call presence not queued: %s", tenant, exc)
    return queued
