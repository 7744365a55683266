"""Admin API for mailbox data: contacts, contact folders, events, the outbox, subscriptions (loopback only).

Every mutation goes through ``store.record_change`` so delta queries and change notifications see it; updates
and deletions record the previous folder (contacts) or the previous event (``data["previous"]``) so delta can
report what left a folder or a calendar window.
"""
from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime, timedelta, timezone

from flask import Blueprint, Response, current_app, jsonify, request

from .fixtures import FixtureError
from .graph_outlook import (SHOW_AS, default_contact_folder_id, instances, now_iso, parse_event_time)
from .graph_subscriptions import (LIFECYCLE_EVENTS, OUTLOOK_KINDS, graph_time, remove_subscription,
                                  send_lifecycle, subscription_view)
from .store import Store, Tenant, UnknownTenant, public

admin_outlook_bp = Blueprint("m365_admin_outlook", __name__)

T = "/_emulator/tenants/<tid>"


class AdminNotFound(LookupError):
    """An admin call names a tenant, user or object that does not exist (answered 404)."""


@admin_outlook_bp.before_request
def _loopback_only():
    try:
        loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return jsonify({"error": "The emulator's admin API answers only on loopback."}), 403
    return None


@admin_outlook_bp.errorhandler(FixtureError)
def _bad_request(exc: FixtureError):
    return jsonify({"error": str(exc)}), 400


@admin_outlook_bp.errorhandler(AdminNotFound)
@admin_outlook_bp.errorhandler(UnknownTenant)
def _not_found(exc: Exception):
    return jsonify({"error": str(exc)}), 404


def _store() -> Store:
    return current_app.extensions["m365_store"]


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise FixtureError("The request body must be a JSON object.")
    return body


def _user_id(tenant: Tenant, key: str) -> str:
    low = key.lower()
    if low in tenant.users:
        return low
    for u in tenant.users.values():
        if (u.get("userPrincipalName") or "").lower() == low:
            return u["id"]
    raise AdminNotFound(f"User {key!r} does not exist in tenant {tenant.id}.")


def _check_folder(tenant: Tenant, uid: str, fid: str | None) -> None:
    if fid and fid != default_contact_folder_id(tenant, uid) and fid not in tenant.contact_folders.get(uid, {}):
        raise FixtureError(f"Contact folder {fid!r} does not exist in the mailbox of {uid}.")


def _fields(body: dict) -> dict:
    return {k: v for k, v in body.items() if not k.startswith(("_", "@"))}


# --- contacts and folders -----------------------------------------------------------------------------------------


@admin_outlook_bp.post(f"{T}/users/<uid>/contacts")
def add_contact(tid: str, uid: str):
    """Create a contact (``parentFolderId`` optional: the default folder): 201 with the stored contact."""
    st = _store()
    body = _fields(_body())
    with st.lock:
        tenant = st.tenant(tid)
        owner = _user_id(tenant, uid)
        _check_folder(tenant, owner, body.get("parentFolderId"))
        contact = {**body, "id": str(body.get("id") or f"AAMkContact{uuid.uuid4().hex}")}
        contact.setdefault("createdDateTime", now_iso())
        contact["lastModifiedDateTime"] = now_iso()
        tenant.contacts.setdefault(owner, {})[contact["id"]] = contact
        st.record_change(tenant, "contact", contact["id"], "created", owner=owner,
                         data={"parentFolderId": contact.get("parentFolderId")})
    return jsonify(contact), 201


def _contact(tenant: Tenant, owner: str, cid: str) -> dict:
    contact = tenant.contacts.get(owner, {}).get(cid)
    if contact is None:
        raise AdminNotFound(f"Contact {cid!r} does not exist in the mailbox of {owner}.")
    return contact


@admin_outlook_bp.patch(f"{T}/users/<uid>/contacts/<cid>")
def update_contact(tid: str, uid: str, cid: str):
    """Update a contact's properties (null removes one; a new ``parentFolderId`` moves it): 200."""
    st = _store()
    body = _fields(_body())
    body.pop("id", None)
    with st.lock:
        tenant = st.tenant(tid)
        owner = _user_id(tenant, uid)
        contact = _contact(tenant, owner, cid)
        _check_folder(tenant, owner, body.get("parentFolderId"))
        old_folder = contact.get("parentFolderId")
        for k, v in body.items():
            if v is None:
                contact.pop(k, None)
            else:
                contact[k] = v
        contact["lastModifiedDateTime"] = now_iso()
        st.record_change(tenant, "contact", cid, "updated", owner=owner, data={"parentFolderId": old_folder})
    return jsonify(contact)


@admin_outlook_bp.delete(f"{T}/users/<uid>/contacts/<cid>")
def delete_contact(tid: str, uid: str, cid: str):
    """Delete a contact: 204."""
    st = _store()
    with st.lock:
        tenant = st.tenant(tid)
        owner = _user_id(tenant, uid)
        contact = _contact(tenant, owner, cid)
        del tenant.contacts[owner][cid]
        st.record_change(tenant, "contact", cid, "deleted", owner=owner,
                         data={"parentFolderId": contact.get("parentFolderId")})
    return Response(status=204)


@admin_outlook_bp.post(f"{T}/users/<uid>/contactFolders")
def add_contact_folder(tid: str, uid: str):
    """Create a contact folder ``{"id"?, "displayName", "parentFolderId"?}``: 201."""
    st = _store()
    body = _fields(_body())
    if not body.get("displayName"):
        raise FixtureError("A contact folder needs a displayName.")
    with st.lock:
        tenant = st.tenant(tid)
        owner = _user_id(tenant, uid)
        _check_folder(tenant, owner, body.get("parentFolderId"))
        folder = {"id": str(body.get("id") or f"AAMkFolder{uuid.uuid4().hex}"), "displayName": body["displayName"],
                  "parentFolderId": body.get("parentFolderId") or default_contact_folder_id(tenant, owner)}
        tenant.contact_folders.setdefault(owner, {})[folder["id"]] = folder
        st.record_change(tenant, "contactFolder", folder["id"], "created", owner=owner)
    return jsonify(folder), 201


@admin_outlook_bp.delete(f"{T}/users/<uid>/contactFolders/<fid>")
def delete_contact_folder(tid: str, uid: str, fid: str):
    """Delete a contact folder and the contacts in it: 204."""
    st = _store()
    with st.lock:
        tenant = st.tenant(tid)
        owner = _user_id(tenant, uid)
        if fid not in tenant.contact_folders.get(owner, {}):
            raise AdminNotFound(f"Contact folder {fid!r} does not exist in the mailbox of {owner}.")
        for cid, c in list(tenant.contacts.get(owner, {}).items()):
            if c.get("parentFolderId") == fid:
                del tenant.contacts[owner][cid]
                st.record_change(tenant, "contact", cid, "deleted", owner=owner, data={"parentFolderId": fid})
        del tenant.contact_folders[owner][fid]
        st.record_change(tenant, "contactFolder", fid, "deleted", owner=owner)
    return Response(status=204)


@admin_outlook_bp.get(f"{T}/users/<uid>/contactFolders")
def list_contact_folders(tid: str, uid: str):
    """``{"defaultFolderId", "value": [folders]}`` of a mailbox."""
    st = _store()
    with st.lock:
        tenant = st.tenant(tid)
        owner = _user_id(tenant, uid)
        folders = list(tenant.contact_folders.get(owner, {}).values())
    return jsonify({"defaultFolderId": default_contact_folder_id(tenant, owner), "value": folders})


# --- events ---------------------------------------------------------------------------------------------------------


def _check_event(event: dict) -> None:
    """400 unless ``event`` has valid start/end, showAs and recurrence (expanded over a year as a test)."""
    try:
        start, end = parse_event_time(event["start"]), parse_event_time(event["end"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FixtureError("An event needs start and end {dateTime, timeZone} with a known time zone "
                           f"(IANA or Windows name): {exc}") from exc
    if end < start:
        raise FixtureError("An event cannot end before it starts.")
    if event.get("showAs") is not None and event["showAs"] not in SHOW_AS:
        raise FixtureError(f"showAs must be one of {', '.join(SHOW_AS)}.")
    if event.get("recurrence"):
        try:
            instances(event, start, start + timedelta(days=366))
        except (KeyError, TypeError, ValueError) as exc:
            raise FixtureError(f"Invalid recurrence: {exc}") from exc


def _event(tenant: Tenant, owner: str, eid: str) -> dict:
    event = tenant.events.get(owner, {}).get(eid)
    if event is None:
        raise AdminNotFound(f"Event {eid!r} does not exist in the mailbox of {owner}.")
    return event


@admin_outlook_bp.post(f"{T}/users/<uid>/events")
def add_event(tid: str, uid: str):
    """Create an event (``recurrence`` makes it a series master): 201."""
    st = _store()
    body = _fields(_body())
    event = {**body, "id": str(body.get("id") or f"AAMkEvent{uuid.uuid4().hex}")}
    _check_event(event)
    event.setdefault("createdDateTime", now_iso())
    event["lastModifiedDateTime"] = now_iso()
    with st.lock:
        tenant = st.tenant(tid)
        owner = _user_id(tenant, uid)
        tenant.events.setdefault(owner, {})[event["id"]] = event
        st.record_change(tenant, "event", event["id"], "created", owner=owner)
    return jsonify(event), 201


@admin_outlook_bp.patch(f"{T}/users/<uid>/events/<eid>")
def update_event(tid: str, uid: str, eid: str):
    """Update an event (null removes a property, e.g. ``recurrence``): 200."""
    st = _store()
    body = _fields(_body())
    body.pop("id", None)
    with st.lock:
        tenant = st.tenant(tid)
        owner = _user_id(tenant, uid)
        event = _event(tenant, owner, eid)
        updated = {k: v for k, v in {**event, **body}.items() if v is not None}
        _check_event(updated)
        updated["lastModifiedDateTime"] = now_iso()
        previous = dict(event)
        tenant.events[owner][eid] = updated
        st.record_change(tenant, "event", eid, "updated", owner=owner, data={"previous": previous})
    return jsonify(updated)


@admin_outlook_bp.delete(f"{T}/users/<uid>/events/<eid>")
def delete_event(tid: str, uid: str, eid: str):
    """Delete an event (a whole series for a master): 204."""
    st = _store()
    with st.lock:
        tenant = st.tenant(tid)
        owner = _user_id(tenant, uid)
        previous = _event(tenant, owner, eid)
        del tenant.events[owner][eid]
        st.record_change(tenant, "event", eid, "deleted", owner=owner, data={"previous": previous})
    return Response(status=204)


@admin_outlook_bp.put(f"{T}/mailboxLatency")
def set_mailbox_latency(tid: str):
    """``{"ms": N}``: every contacts/events read of the tenant takes N ms more (holds the mailbox slot)."""
    st = _store()
    ms = _body().get("ms", 0)
    if not isinstance(ms, int) or not 0 <= ms <= 60000:
        raise FixtureError('"ms" must be an integer between 0 and 60000.')
    with st.lock:
        st.tenant(tid).extra.setdefault("outlook", {})["latencyMs"] = ms
    return jsonify({"ms": ms})


# --- outbox ---------------------------------------------------------------------------------------------------------


@admin_outlook_bp.get(f"{T}/outbox")
def get_outbox(tid: str):
    """Mail accepted by sendMail / send, oldest first."""
    st = _store()
    with st.lock:
        return jsonify(list(st.tenant(tid).outbox))


@admin_outlook_bp.get(f"{T}/drafts")
def get_drafts(tid: str):
    """Drafts not sent (or deleted) yet, of every mailbox: ``[{"id", "mailbox", "subject", "to"}]``."""
    st = _store()
    with st.lock:
        tenant = st.tenant(tid)
        return jsonify([{"id": mid, "mailbox": user_id, "subject": draft["subject"], "to": list(draft["to"])}
                        for user_id, drafts in tenant.messages.items() for mid, draft in drafts.items()])


@admin_outlook_bp.delete(f"{T}/outbox")
def clear_outbox(tid: str):
    """Empty the outbox: 204."""
    st = _store()
    with st.lock:
        st.tenant(tid).outbox.clear()
    return Response(status=204)


# --- subscriptions --------------------------------------------------------------------------------------------------


@admin_outlook_bp.get(f"{T}/subscriptions")
def get_subscriptions(tid: str):
    """The tenant's live subscriptions (every app), as Graph JSON."""
    st = _store()
    with st.lock:
        return jsonify([subscription_view(s) for s in st.tenant(tid).subscriptions.values()])


@admin_outlook_bp.get(f"{T}/notifications")
def get_notifications(tid: str):
    """Delivery attempts of change and lifecycle notifications (last 1000): status 0 = not reached."""
    st = _store()
    with st.lock:
        return jsonify(list(st.tenant(tid).extra.get("notificationLog", [])))


def _subscription(tenant: Tenant, sid: str) -> dict:
    sub = tenant.subscriptions.get(sid)
    if sub is None:
        raise AdminNotFound(f"Subscription {sid!r} does not exist in tenant {tenant.id}.")
    return sub


@admin_outlook_bp.post(f"{T}/subscriptions/<sid>/lifecycle")
def trigger_lifecycle(tid: str, sid: str):
    """``{"event": "reauthorizationRequired"|"missed"|"subscriptionRemoved"}``: send it (removed also deletes)."""
    st = _store()
    event = _body().get("event")
    if event not in LIFECYCLE_EVENTS:
        raise FixtureError(f'"event" must be one of {", ".join(LIFECYCLE_EVENTS)}.')
    with st.lock:
        tenant = st.tenant(tid)
        sub = dict(_subscription(tenant, sid))
    if event != "reauthorizationRequired" and sub["_match"]["kind"] not in OUTLOOK_KINDS:
        raise FixtureError(f"Microsoft sends {event} only for Outlook message, event and contact subscriptions.")
    if event == "subscriptionRemoved":
        remove_subscription(st, tenant, sid, announce=False)
    sent = send_lifecycle(st, tenant, sub, event)
    return jsonify({"sent": sent, "subscription": public(sub)}), 202


@admin_outlook_bp.post(f"{T}/subscriptions/<sid>/expire")
def force_expiry(tid: str, sid: str):
    """Make the subscription expire now; the expiry thread removes it (and announces it) within a second."""
    st = _store()
    with st.lock:
        sub = _subscription(st.tenant(tid), sid)
        sub["expirationDateTime"] = graph_time(datetime.now(timezone.utc) - timedelta(seconds=1))
    return jsonify(public(sub)), 202
