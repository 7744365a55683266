"""Graph contacts, contact folders and events of a mailbox: lists, ``$select``/``$filter``, delta, calendarView.

Routes (``B/v1.0/users/{id|upn}/...``): ``contacts[/{id}]``, ``contactFolders[/{id}[/childFolders[/{id}]]]``,
``contactFolders/{id}[/childFolders/{id}]/contacts``, ``contactFolders/{id}/contacts/delta``,
``contactFolders/delta``, ``[calendar/]events[/{id}]``, ``[calendar/]calendarView[/delta]``.

Mailbox data lives in the tenant (``contact_folders``, ``contacts``, ``events``, keyed by user id). A contact
without ``parentFolderId`` is in the user's default Contacts folder (:func:`default_contact_folder_id`); a folder
without one is a child of it. Delta rounds read the tenant's change log: a token carries the sequence number
its round started at, and the next round reports every contact/folder/event changed since (current state, or
``@removed``). Series are expanded by :mod:`.recurrence`; answers are in UTC or ``Prefer: outlook.timezone``.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import re
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, request

from .graph_common import (BadToken, StaleToken, apply_select, base_url, build_url, collection, graph_context,
                           graph_error, graph_json, mailbox_slot, odata_context, paginate, parse_select, prefer, read_token,
                           require_permission, resolve_user, sign_token, store)
from .recurrence import (format_event_time, instances, parse_event_time, zone)  # noqa: F401  (re-exported)
from .store import Tenant

outlook_bp = Blueprint("m365_outlook", __name__)

CONTACT_PERMS = ("Contacts.Read", "Contacts.ReadWrite")
CALENDAR_PERMS = ("Calendars.Read", "Calendars.ReadBasic", "Calendars.ReadWrite")
OUTLOOK_PAGE, OUTLOOK_MAX_PAGE = 10, 1000

_CONTACT_DEFAULTS: dict[str, Any] = {
    "categories": [], "birthday": None, "fileAs": "", "displayName": "", "givenName": None, "initials": None,
    "middleName": None, "nickName": None, "surname": None, "title": None, "generation": None,
    "imAddresses": [], "jobTitle": None, "companyName": None, "department": None, "officeLocation": None,
    "profession": None, "businessHomePage": None, "assistantName": None, "manager": None, "homePhones": [],
    "mobilePhone": None, "businessPhones": [], "spouseName": None, "personalNotes": "", "children": [],
    "emailAddresses": [], "homeAddress": {}, "businessAddress": {}, "otherAddress": {},
}
_EVENT_DEFAULTS: dict[str, Any] = {
    "subject": "", "bodyPreview": "", "importance": "normal", "sensitivity": "normal", "isAllDay": False,
    "isCancelled": False, "isOrganizer": True, "showAs": "busy", "seriesMasterId": None, "recurrence": None,
    "categories": [], "attendees": [], "location": {"displayName": ""}, "isReminderOn": True,
    "reminderMinutesBeforeStart": 15, "responseRequested": True, "onlineMeeting": None,
    "body": {"contentType": "html", "content": ""},
}
SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")


# --- object views ----------------------------------------------------------------------------------------------


def now_iso() -> str:
    """The current UTC time as Graph writes timestamps (``2024-01-02T03:04:05Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def change_key(obj: dict) -> str:
    """A content hash standing in for Exchange's changeKey (changes whenever a public property does)."""
    body = json.dumps({k: v for k, v in obj.items() if not k.startswith(("_", "@")) and k != "changeKey"},
                      sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:24]


def default_contact_folder_id(tenant: Tenant, user_id: str) -> str:
    """The id of ``user_id``'s default Contacts folder (stable, unique per tenant and user)."""
    digest = hashlib.sha256(f"{tenant.id}/{user_id}/contacts".encode()).hexdigest()
    return f"AAMkContacts{digest[:32]}"


def contact_folder_of(tenant: Tenant, user_id: str, contact: dict) -> str:
    """The folder id ``contact`` lives in (the default folder when it names none)."""
    return contact.get("parentFolderId") or default_contact_folder_id(tenant, user_id)


def contact_view(tenant: Tenant, user_id: str, contact: dict) -> dict:
    """The Graph JSON of a stored contact (defaults filled in, ``parentFolderId`` resolved, etag)."""
    out = {"id": contact["id"], **_CONTACT_DEFAULTS}
    out.update({k: v for k, v in contact.items() if not k.startswith("_")})
    out["parentFolderId"] = contact_folder_of(tenant, user_id, contact)
    out.setdefault("createdDateTime", contact.get("createdDateTime") or "2024-01-01T00:00:00Z")
    out.setdefault("lastModifiedDateTime", out["createdDateTime"])
    if not out.get("displayName"):
        out["displayName"] = " ".join(p for p in (out.get("givenName"), out.get("surname")) if p)
    out["changeKey"] = change_key(out)
    return {"@odata.etag": f'W/"{out["changeKey"]}"', **out}


def folder_view(tenant: Tenant, user_id: str, folder: dict) -> dict:
    """The Graph JSON of a stored contact folder."""
    return {"id": folder["id"], "displayName": folder.get("displayName", ""),
            "parentFolderId": folder.get("parentFolderId") or default_contact_folder_id(tenant, user_id)}


def _outlook_user(uid: str, perms: tuple[str, ...]) -> tuple[Tenant, dict]:
    ctx = graph_context()
    require_permission(*perms)
    with store().lock:
        return ctx.tenant, resolve_user(ctx.tenant, uid)


def _mailbox(tenant: Tenant, user: dict):
    return mailbox_slot(tenant, user["id"])


def _latency(tenant: Tenant) -> None:
    """Simulated Exchange latency (admin ``PUT .../mailboxLatency``): lets tests hold mailbox slots."""
    ms = tenant.extra.get("outlook", {}).get("latencyMs", 0)
    if ms:
        time.sleep(ms / 1000)


def _not_found(kind: str) -> Exception:
    return graph_error(404, "ErrorItemNotFound", f"The specified object was not found in the store. ({kind})")


def _folder(tenant: Tenant, user_id: str, fid: str) -> dict:
    """The folder ``fid`` of the mailbox (the default folder included); 404 when absent."""
    if fid == default_contact_folder_id(tenant, user_id):
        return {"id": fid, "displayName": "Contacts", "parentFolderId": None}
    folder = tenant.contact_folders.get(user_id, {}).get(fid)
    if folder is None:
        raise _not_found("contactFolder")
    return folder


# --- contacts --------------------------------------------------------------------------------------------------

_EMAIL_FILTER = re.compile(r"^\s*emailAddresses/any\((\w+)\s*:\s*\1/address\s+eq\s+'((?:[^']|'')*)'\)\s*$", re.I)


def _contact_filter() -> str | None:
    raw = request.args.get("$filter")
    if raw is None:
        return None
    m = _EMAIL_FILTER.match(raw)
    if not m:
        raise graph_error(400, "ErrorInvalidUrlQueryFilter",
                          "The query filter contains one or more invalid nodes. Only "
                          "emailAddresses/any(a:a/address eq 'address') is supported on contacts.")
    return m.group(2).replace("''", "'").lower()


def _list_contacts(uid: str, fid: str | None, parent: str | None = None):
    tenant, user = _outlook_user(uid, CONTACT_PERMS)
    email = _contact_filter()
    select = parse_select()
    with _mailbox(tenant, user):
        _latency(tenant)
        with store().lock:
            folder_id = fid or default_contact_folder_id(tenant, user["id"])
            folder = _folder(tenant, user["id"], folder_id)
            if parent is not None and (folder.get("parentFolderId") or default_contact_folder_id(
                    tenant, user["id"])) != parent:
                raise _not_found("contactFolder")
            # Stored contacts are filtered and paged first; only the page is rendered (a $top=1 stays cheap).
            items = [c for c in tenant.contacts.get(user["id"], {}).values()
                     if contact_folder_of(tenant, user["id"], c) == folder_id]
            if email is not None:
                items = [c for c in items if any((a.get("address") or "").lower() == email
                                                 for a in c.get("emailAddresses") or [])]
            items.sort(key=lambda c: c["id"])
            page, next_link = paginate(items, tenant=tenant, default_size=OUTLOOK_PAGE, max_size=OUTLOOK_MAX_PAGE,
                                       key=lambda c: c["id"])
            page = [contact_view(tenant, user["id"], c) for c in page]
    return graph_json(collection(odata_context(f"users('{user['id']}')/contacts", select),
                                 [_select_outlook(c, select) for c in page], next_link))


def _select_outlook(obj: dict, select: list[str] | None) -> dict:
    if not select:
        return obj
    out = apply_select(obj, select, always=("id",))
    if "@odata.etag" in obj:
        out = {"@odata.etag": obj["@odata.etag"], **out}
    return out


@outlook_bp.get("/v1.0/users/<uid>/contacts")
def list_default_contacts(uid: str):
    """Contacts of the default Contacts folder."""
    return _list_contacts(uid, None)


@outlook_bp.get("/v1.0/users/<uid>/contactFolders/<fid>/contacts")
@outlook_bp.get("/v1.0/users/<uid>/contactfolders/<fid>/contacts")
def list_folder_contacts(uid: str, fid: str):
    """Contacts of one folder."""
    return _list_contacts(uid, fid)


@outlook_bp.get("/v1.0/users/<uid>/contactFolders/<pid>/childFolders/<fid>/contacts")
@outlook_bp.get("/v1.0/users/<uid>/contactfolders/<pid>/childfolders/<fid>/contacts")
def list_child_folder_contacts(uid: str, pid: str, fid: str):
    """Contacts of a child folder addressed through its parent."""
    return _list_contacts(uid, fid, parent=pid)


@outlook_bp.get("/v1.0/users/<uid>/contacts/<cid>")
@outlook_bp.get("/v1.0/users/<uid>/contactFolders/<fid>/contacts/<cid>")
def get_contact(uid: str, cid: str, fid: str | None = None):
    """One contact."""
    tenant, user = _outlook_user(uid, CONTACT_PERMS)
    select = parse_select()
    with _mailbox(tenant, user), store().lock:
        contact = tenant.contacts.get(user["id"], {}).get(cid)
        if contact is None or (fid and contact_folder_of(tenant, user["id"], contact) != fid):
            raise _not_found("contact")
        view = contact_view(tenant, user["id"], contact)
    return graph_json({"@odata.context": odata_context(f"users('{user['id']}')/contacts", select, entity=True),
                       **_select_outlook(view, select)})


def _list_folders(uid: str, parent: str | None):
    tenant, user = _outlook_user(uid, CONTACT_PERMS)
    select = parse_select()
    with _mailbox(tenant, user), store().lock:
        default = default_contact_folder_id(tenant, user["id"])
        parent = parent or default
        _folder(tenant, user["id"], parent)
        items = sorted((folder_view(tenant, user["id"], f)
                        for f in tenant.contact_folders.get(user["id"], {}).values()),
                       key=lambda f: f["id"])
        items = [f for f in items if f["parentFolderId"] == parent]
        page, next_link = paginate(items, tenant=tenant, default_size=OUTLOOK_PAGE, max_size=OUTLOOK_MAX_PAGE,
                                   key=lambda f: f["id"])
    return graph_json(collection(odata_context(f"users('{user['id']}')/contactFolders", select),
                                 [_select_outlook(f, select) for f in page], next_link))


@outlook_bp.get("/v1.0/users/<uid>/contactFolders")
@outlook_bp.get("/v1.0/users/<uid>/contactfolders")
def list_contact_folders(uid: str):
    """Folders directly under the default Contacts folder (which itself is not listed)."""
    return _list_folders(uid, None)


@outlook_bp.get("/v1.0/users/<uid>/contactFolders/<fid>/childFolders")
@outlook_bp.get("/v1.0/users/<uid>/contactfolders/<fid>/childfolders")
def list_child_folders(uid: str, fid: str):
    """Folders directly under ``fid``."""
    return _list_folders(uid, fid)


@outlook_bp.get("/v1.0/users/<uid>/contactFolders/<fid>")
@outlook_bp.get("/v1.0/users/<uid>/contactfolders/<fid>")
def get_contact_folder(uid: str, fid: str):
    """One folder (the default folder too, by its id)."""
    tenant, user = _outlook_user(uid, CONTACT_PERMS)
    select = parse_select()
    with _mailbox(tenant, user), store().lock:
        view = folder_view(tenant, user["id"], _folder(tenant, user["id"], fid))
        if fid == default_contact_folder_id(tenant, user["id"]):
            view["parentFolderId"] = f"{fid}Root"
    return graph_json({"@odata.context": odata_context(f"users('{user['id']}')/contactFolders", select,
                                                       entity=True), **_select_outlook(view, select)})


# --- delta (contacts, contact folders) ---------------------------------------------------------------------------


def _delta_unavailable(tenant: Tenant) -> None:
    # 21Vianet's Graph binds no delta function to contact/contactFolder (graph-metadata, Mooncake CSDL).
    if tenant.cloud == "china":
        raise graph_error(501, "NotImplemented", "This operation target is not yet supported.")


def _read_delta_token(tenant: Tenant, kind: str, user_id: str, scope: str | None) -> dict | None:
    """The state of the ``$skiptoken``/``$deltatoken`` of this request (None for an initial request).

    A reset or foreign token is 410 ``SyncStateNotFound``, as Exchange answers for a lost sync state.
    """
    raw = request.args.get("$skiptoken") or request.args.get("$deltatoken")
    if raw is None:
        return None
    try:
        state = read_token(tenant, raw)
    except StaleToken as exc:
        raise graph_error(410, "SyncStateNotFound", "The sync state generation is not found. Start a new "
                          "synchronization without a delta token.") from exc
    except BadToken as exc:
        raise graph_error(400, "ErrorInvalidUrlQuery", "The delta or skip token is invalid.") from exc
    if state.get("k") != kind or state.get("u") != user_id or state.get("f") != scope:
        raise graph_error(400, "ErrorInvalidUrlQuery", "The delta token belongs to another collection.")
    return state


def _changed_ids(tenant: Tenant, kind: str, user_id: str, since: int, upto: int) -> dict[str, list]:
    """Object id → its changes (oldest first) of ``kind`` in ``user_id``'s mailbox with since < seq <= upto."""
    out: dict[str, list] = {}
    first = bisect.bisect_right(tenant.changes, since, key=lambda ch: ch.seq)   # the log is in seq order
    for ch in tenant.changes[first:]:
        if ch.seq > upto:
            break
        if ch.kind == kind and ch.owner == user_id:
            out.setdefault(ch.object_id, []).append(ch)
    return out


def _delta_round(tenant: Tenant, state: dict | None, kind: str, user_id: str, scope: str | None,
                 extra: dict, items_fn, path: str, context: str):
    """Run one delta page: compute the round's items with ``items_fn(since, upto)``, slice the page, link on.

    ``state`` is the token's content (None: initial round). A ``$deltatoken`` starts a round with
    ``since`` = the round start recorded in it; a ``$skiptoken`` continues one at its offset.
    """
    size = _max_page_size()
    with store().lock:
        upto_now = store().current_seq
        if state is None:
            since, upto, offset = None, upto_now, 0
        elif "o" in state:
            since, upto, offset = state.get("s"), state["r"], state["o"]
        else:
            since, upto, offset = state["r"], upto_now, 0
        items = items_fn(since, upto)
    page = items[offset:offset + size]
    base = {"k": kind, "u": user_id, "f": scope, **extra}
    if offset + size < len(items):
        token = sign_token(tenant, {**base, "s": since, "r": upto, "o": offset + size})
        link_key, link = "@odata.nextLink", build_url(path, {"$skiptoken": token})
    else:
        token = sign_token(tenant, {**base, "r": upto})
        link_key, link = "@odata.deltaLink", build_url(path, {"$deltatoken": token})
    return graph_json({"@odata.context": context, "value": page, link_key: link})


def _max_page_size() -> int:
    pref = prefer().get("odata.maxpagesize")
    if pref and pref.isdigit() and int(pref) > 0:
        return min(int(pref), OUTLOOK_MAX_PAGE)
    return OUTLOOK_PAGE


def _removed(odata_type: str, oid: str) -> dict:
    return {"@odata.type": f"#microsoft.graph.{odata_type}", "id": oid, "@removed": {"reason": "deleted"}}


@outlook_bp.get("/v1.0/users/<uid>/contactFolders/<fid>/contacts/delta")
@outlook_bp.get("/v1.0/users/<uid>/contactfolders/<fid>/contacts/delta")
@outlook_bp.get("/v1.0/users/<uid>/contactFolders/<fid>/contacts/microsoft.graph.delta()")
@outlook_bp.get("/v1.0/users/<uid>/contactfolders/<fid>/contacts/microsoft.graph.delta()")
def contacts_delta(uid: str, fid: str):
    """Contacts added, updated or removed in one folder since the token's round (all of them initially)."""
    tenant, user = _outlook_user(uid, CONTACT_PERMS)
    _delta_unavailable(tenant)
    user_id = user["id"]
    with _mailbox(tenant, user):
        _latency(tenant)
        with store().lock:
            _folder(tenant, user_id, fid)
        state = _read_delta_token(tenant, "contacts", user_id, fid)
        select = state.get("sel") if state else parse_select()

        def items(since: int | None, upto: int) -> list[dict]:
            mailbox = tenant.contacts.get(user_id, {})
            if since is None:
                current = [c for c in mailbox.values() if contact_folder_of(tenant, user_id, c) == fid]
                return [_select_outlook(contact_view(tenant, user_id, c), select)
                        for c in sorted(current, key=lambda c: c["id"])]
            out = []
            for cid, changes in sorted(_changed_ids(tenant, "contact", user_id, since, upto).items()):
                c = mailbox.get(cid)
                if c is not None and contact_folder_of(tenant, user_id, c) == fid:
                    out.append(_select_outlook(contact_view(tenant, user_id, c), select))
                elif _was_in_folder(tenant, user_id, changes, fid):
                    out.append(_removed("contact", cid))
            return out

        path = f"/v1.0/users/{uid}/contactfolders/{fid}/contacts/delta"
        return _delta_round(tenant, state, "contacts", user_id, fid, {"sel": select}, items, path,
                            odata_context(f"users('{user_id}')/contactFolders('{fid}')/contacts", select))


def _was_in_folder(tenant: Tenant, user_id: str, changes: list, fid: str) -> bool:
    """Whether a contact that is not in ``fid`` now may have been (the admin API records the old folder)."""
    default = default_contact_folder_id(tenant, user_id)
    for ch in changes:
        old = (ch.data or {}).get("parentFolderId", "?")
        if old == "?" or (old or default) == fid:
            return True
    return False


@outlook_bp.get("/v1.0/users/<uid>/contactFolders/delta")
@outlook_bp.get("/v1.0/users/<uid>/contactfolders/delta")
@outlook_bp.get("/v1.0/users/<uid>/contactFolders/microsoft.graph.delta()")
def contact_folders_delta(uid: str):
    """Contact folders of the whole mailbox added, updated or removed since the token's round."""
    tenant, user = _outlook_user(uid, CONTACT_PERMS)
    _delta_unavailable(tenant)
    user_id = user["id"]
    with _mailbox(tenant, user):
        state = _read_delta_token(tenant, "contactFolders", user_id, None)
        select = state.get("sel") if state else parse_select()

        def items(since: int | None, upto: int) -> list[dict]:
            folders = tenant.contact_folders.get(user_id, {})
            if since is None:
                return [_select_outlook(folder_view(tenant, user_id, f), select)
                        for f in sorted(folders.values(), key=lambda f: f["id"])]
            out = []
            for fid in sorted(_changed_ids(tenant, "contactFolder", user_id, since, upto)):
                f = folders.get(fid)
                out.append(_select_outlook(folder_view(tenant, user_id, f), select) if f
                           else _removed("contactFolder", fid))
            return out

        return _delta_round(tenant, state, "contactFolders", user_id, None, {"sel": select}, items,
                            f"/v1.0/users/{uid}/contactfolders/delta",
                            odata_context("Collection(contactFolder)", select))


def parse_query_time(name: str) -> datetime:
    """A required ISO 8601 query parameter (its own offset counts; none means UTC)."""
    raw = request.args.get(name) or request.args.get(name[0].upper() + name[1:])
    if not raw:
        raise graph_error(400, "ErrorInvalidParameter", "This request requires a time window specified by the "
                          "query string parameters StartDateTime and EndDateTime.")
    try:
        dt = datetime.fromisoformat(raw.strip().replace(" ", "+").replace("Z", "+00:00"))
    except ValueError as exc:
        raise graph_error(400, "ErrorInvalidParameter", f"The value '{raw}' of parameter '{name}' is not a "
                          "valid ISO 8601 date and time.") from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def preferred_zone() -> str | None:
    """The valid time zone of ``Prefer: outlook.timezone="..."``, or None (answers are then in UTC)."""
    name = prefer().get("outlook.timezone")
    if not name:
        return None
    try:
        zone(name)
    except ValueError:
        return None
    return name


def _with_preference(resp, tz_name: str | None):
    if tz_name:
        resp.headers["Preference-Applied"] = f'outlook.timezone="{tz_name}"'
    return resp


def event_view(event: dict, tz_name: str, start: datetime | None = None, end: datetime | None = None) -> dict:
    """The Graph JSON of an event (or occurrence) with start/end in ``tz_name``."""
    out = {"id": event["id"], **_EVENT_DEFAULTS}
    out.update({k: v for k, v in event.items() if not k.startswith("_")})
    out.setdefault("type", "seriesMaster" if event.get("recurrence") else "singleInstance")
    out.setdefault("createdDateTime", "2024-01-01T00:00:00Z")
    out.setdefault("lastModifiedDateTime", out["createdDateTime"])
    out.setdefault("originalStartTimeZone", event["start"].get("timeZone"))
    out.setdefault("originalEndTimeZone", event["end"].get("timeZone"))
    out.setdefault("iCalUId", hashlib.sha1(event.get("seriesMasterId", event["id"]).encode()).hexdigest())
    if out["showAs"] not in SHOW_AS:
        out["showAs"] = "unknown"
    start = start or parse_event_time(event["start"])
    end = end or parse_event_time(event["end"])
    if out.get("isAllDay"):
        # All-day events float: midnight to midnight of their dates in whatever zone is asked for.
        out["start"] = {"dateTime": event["start"]["dateTime"][:10] + "T00:00:00.0000000", "timeZone": tz_name}
        span = (end - start).days or 1
        last = date.fromisoformat(out["start"]["dateTime"][:10]) + timedelta(days=span)
        if start != parse_event_time(event["start"]):   # an occurrence: its own date
            day = start.astimezone(zone(event["start"].get("timeZone"))).date()
            out["start"]["dateTime"] = f"{day.isoformat()}T00:00:00.0000000"
            last = day + timedelta(days=span)
        out["end"] = {"dateTime": f"{last.isoformat()}T00:00:00.0000000", "timeZone": tz_name}
    else:
        out["start"], out["end"] = format_event_time(start, tz_name), format_event_time(end, tz_name)
    out["changeKey"] = change_key(out)
    return {"@odata.etag": f'W/"{out["changeKey"]}"', **out}


def find_event(tenant: Tenant, user_id: str, eid: str) -> tuple[dict, datetime | None]:
    """A stored event, or the occurrence ``eid`` names (with its UTC start); 404 when absent."""
    events = tenant.events.get(user_id, {})
    if eid in events:
        return events[eid], None
    master_id, sep, stamp = eid.rpartition("_OID_")
    master = events.get(master_id) if sep else None
    if master and master.get("recurrence"):
        start = datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
        for occ, s, e in instances(master, start, start + timedelta(seconds=1)):
            if occ["id"] == eid:
                return occ, s
    raise _not_found("event")


# --- events and calendarView ---------------------------------------------------------------------------------------


@outlook_bp.get("/v1.0/users/<uid>/events")
@outlook_bp.get("/v1.0/users/<uid>/calendar/events")
def list_events(uid: str):
    """Single events and series masters of the primary calendar (not expanded)."""
    tenant, user = _outlook_user(uid, CALENDAR_PERMS)
    tz_name = preferred_zone()
    select = parse_select()
    with _mailbox(tenant, user):
        _latency(tenant)
        with store().lock:
            items = sorted(tenant.events.get(user["id"], {}).values(), key=lambda e: e["id"])
            page, next_link = paginate(items, tenant=tenant, default_size=OUTLOOK_PAGE,
                                       max_size=OUTLOOK_MAX_PAGE, key=lambda e: e["id"])
            values = [_select_outlook(event_view(e, tz_name or "UTC"), select) for e in page]
    body = collection(odata_context(f"users('{user['id']}')/events", select), values, next_link)
    return _with_preference(graph_json(body), tz_name)


@outlook_bp.get("/v1.0/users/<uid>/events/<eid>")
@outlook_bp.get("/v1.0/users/<uid>/calendar/events/<eid>")
def get_event(uid: str, eid: str):
    """One event or occurrence."""
    tenant, user = _outlook_user(uid, CALENDAR_PERMS)
    tz_name = preferred_zone()
    select = parse_select()
    with _mailbox(tenant, user), store().lock:
        event, start = find_event(tenant, user["id"], eid)
        end = start + (parse_event_time(event["end"]) - parse_event_time(event["start"])) if start else None
        view = _select_outlook(event_view(event, tz_name or "UTC", start, end), select)
    return _with_preference(graph_json({"@odata.context": odata_context(f"users('{user['id']}')/events", select,
                                                                        entity=True), **view}), tz_name)


def calendar_view_items(tenant: Tenant, user_id: str, win_start: datetime, win_end: datetime,
                        tz_name: str, event_ids: set[str] | None = None) -> list[dict]:
    """Every instance overlapping the window, as Graph JSON, ordered by start (then id)."""
    rows = []
    for event in tenant.events.get(user_id, {}).values():
        if event_ids is None or event["id"] in event_ids:
            rows.extend(instances(event, win_start, win_end))
    rows.sort(key=lambda r: (r[1], r[0]["id"]))
    return [event_view(ev, tz_name, s, e) for ev, s, e in rows]


@outlook_bp.get("/v1.0/users/<uid>/calendarView")
@outlook_bp.get("/v1.0/users/<uid>/calendar/calendarView")
@outlook_bp.get("/v1.0/users/<uid>/calendarview")
def calendar_view(uid: str):
    """Instances (single events, occurrences of expanded series) in [startDateTime, endDateTime)."""
    tenant, user = _outlook_user(uid, CALENDAR_PERMS)
    win_start, win_end = parse_query_time("startDateTime"), parse_query_time("endDateTime")
    tz_name = preferred_zone()
    select = parse_select()
    with _mailbox(tenant, user):
        _latency(tenant)
        with store().lock:
            items = calendar_view_items(tenant, user["id"], win_start, win_end, tz_name or "UTC")
            page, next_link = paginate(items, tenant=tenant, default_size=OUTLOOK_PAGE, max_size=OUTLOOK_MAX_PAGE)
    body = collection(odata_context(f"users('{user['id']}')/calendarView", select),
                      [_select_outlook(e, select) for e in page], next_link)
    return _with_preference(graph_json(body), tz_name)


@outlook_bp.get("/v1.0/users/<uid>/calendarView/delta")
@outlook_bp.get("/v1.0/users/<uid>/calendarview/delta")
@outlook_bp.get("/v1.0/users/<uid>/calendar/calendarView/delta")
@outlook_bp.get("/v1.0/users/<uid>/calendarView/microsoft.graph.delta()")
def calendar_view_delta(uid: str):
    """calendarView changes: the window's instances first, later what changed (or ``@removed``) since."""
    tenant, user = _outlook_user(uid, CALENDAR_PERMS)
    user_id = user["id"]
    tz_name = preferred_zone()
    if request.args.get("$select"):
        raise graph_error(400, "ErrorInvalidUrlQuery", "The $select query option is not supported by "
                          "calendarView delta.")
    with _mailbox(tenant, user):
        _latency(tenant)
        state = _read_delta_token(tenant, "calendarView", user_id, None)
        if state:
            win_start, win_end = (datetime.fromisoformat(state[k]) for k in ("st", "en"))
        else:
            win_start, win_end = parse_query_time("startDateTime"), parse_query_time("endDateTime")

        def items(since: int | None, upto: int) -> list[dict]:
            if since is None:
                found = calendar_view_items(tenant, user_id, win_start, win_end, tz_name or "UTC")
            else:
                changed = _changed_ids(tenant, "event", user_id, since, upto)
                found = calendar_view_items(tenant, user_id, win_start, win_end, tz_name or "UTC", set(changed))
                live = {e["id"] for e in found}
                gone: set[str] = set()
                for eid, changes in changed.items():
                    if eid not in tenant.events.get(user_id, {}):
                        gone.add(eid)
                    for ch in changes:
                        prev = (ch.data or {}).get("previous")
                        if prev:
                            gone |= {o["id"] for o, _, _ in instances(prev, win_start, win_end)} - live
                found += [_removed("event", i) for i in sorted(gone - live)]
            return [{"@odata.type": "#microsoft.graph.event", **e} if "@removed" not in e else e for e in found]

        resp = _delta_round(tenant, state, "calendarView", user_id, None,
                            {"st": win_start.isoformat(), "en": win_end.isoformat()}, items,
                            f"/v1.0/users/{uid}/calendarView/delta", f"{base_url()}/v1.0/$metadata#Collection(event)")
    return _with_preference(resp, tz_name)
