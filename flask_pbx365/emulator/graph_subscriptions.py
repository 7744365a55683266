"""Graph subscriptions (webhooks) and the change and lifecycle notifications they deliver.

``POST /v1.0/subscriptions`` validates the notification URL(s) with Graph's ``validationToken`` handshake, then
the store listener registered by :func:`init_store` turns every matching store change into a notification,
POSTed by a background :class:`Notifier` thread with retries. Another thread removes expired subscriptions
(Outlook ones announce it with a ``subscriptionRemoved`` lifecycle event when they have a lifecycle URL).
Subscriptions live in ``tenant.subscriptions`` as Graph JSON plus private ``_`` keys (``_appId``, ``_match``).
"""
from __future__ import annotations

import heapq
import ipaddress
import itertools
import re
import threading
import time
import uuid
import weakref
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from flask import Blueprint, Response, request

from .graph_common import (GraphContext, graph_context, graph_error, graph_json, has_permission, odata_context,
                           resolve_user, store)
from .store import Change, Store, Tenant, public

subscriptions_bp = Blueprint("m365_subscriptions", __name__)

#: Maximum subscription lifetimes in minutes (Microsoft Graph "subscription lifetime" table).
MAX_MINUTES = {"contact": 4230, "event": 4230, "message": 4230, "user": 41760, "group": 41760}
OUTLOOK_KINDS = ("contact", "event", "message")
#: Application permissions that let an app subscribe to each kind of resource.
PERMISSIONS = {
    "contact": ("Contacts.Read", "Contacts.ReadWrite"),
    "event": ("Calendars.Read", "Calendars.ReadWrite"),
    "message": ("Mail.ReadBasic", "Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite"),
    "user": ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "group": ("Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All",
              "GroupMember.Read.All"),
}
DIRECTORY_QUOTA = 100          # subscriptions per app and tenant on users/groups
VALIDATION_TIMEOUT = 10.0      # seconds the endpoint has to echo the validationToken
DELIVERY_TIMEOUT = 3.0         # seconds an endpoint has to acknowledge a notification
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)   # emulator-sized stand-in for Graph's 4 hours of retries
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def graph_time(dt: datetime) -> str:
    """Graph's DateTimeOffset form with 7 fractional digits: ``2024-01-01T21:42:18.2257768Z``."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_time(value: Any) -> datetime:
    """An ISO 8601 timestamp (offset or ``Z``; none means UTC) as an aware datetime; ``ValueError`` if not."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    text = value.strip().replace("Z", "+00:00")
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", text)
    if m:   # Python accepts at most 6 fractional digits
        text = f"{m.group(1)}.{m.group(2)[:6]}{m.group(3)}"
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


# --- delivery ----------------------------------------------------------------------------------------------------


def _is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def post_to_endpoint(url: str, **kw) -> requests.Response:
    """POST to a subscriber: loopback endpoints may use http or self-signed https; others need a trusted cert."""
    return requests.post(url, verify=not _is_loopback(url), allow_redirects=False, **kw)


class Notifier:
    """Delivers notifications on a worker thread (retrying failures) and expires subscriptions on another.

    One per :class:`Store`; its threads are daemons that stop with :meth:`stop`.
    """

    def __init__(self, st: Store):
        self._store = weakref.ref(st)
        self._heap: list[tuple[float, int, dict]] = []
        self._cond = threading.Condition()
        self._counter = itertools.count()
        self._stop = threading.Event()
        # Two senders, so one endpoint that answers slowly does not hold up every other one.
        self._threads = [threading.Thread(target=self._deliver_loop, name=f"m365-notify-{i}", daemon=True)
                         for i in range(2)]
        self._threads.append(threading.Thread(target=self._expiry_loop, name="m365-sub-expiry", daemon=True))

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def enqueue(self, tenant: Tenant, url: str, payload: dict, kind: str, subscription_id: str,
                delay: float = 0.0) -> None:
        """Queue one POST of ``payload`` to ``url`` (``kind``: ``change`` or ``lifecycle``)."""
        job = {"tenant": tenant, "url": url, "payload": payload, "kind": kind, "sid": subscription_id,
               "attempt": 0}
        self._push(job, delay)

    def _push(self, job: dict, delay: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._counter), job))
            self._cond.notify()

    def _deliver_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._stop.is_set() and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else 1.0
                    self._cond.wait(max(0.01, min(wait, 1.0)))
                if self._stop.is_set():
                    return
                _, _, job = heapq.heappop(self._heap)
            self._deliver(job)

    def _deliver(self, job: dict) -> None:
        job["attempt"] += 1
        status, error = 0, None
        try:
            resp = post_to_endpoint(job["url"], json=job["payload"], timeout=DELIVERY_TIMEOUT)
            status = resp.status_code
        except requests.RequestException as exc:
            error = type(exc).__name__
        ok = 200 <= status < 300
        st = self._store()
        if st is not None:
            with st.lock:
                log = job["tenant"].extra.setdefault("notificationLog", [])
                log.append({"subscriptionId": job["sid"], "kind": job["kind"], "url": job["url"],
                            "attempt": job["attempt"], "status": status, "error": error,
                            "at": _now().isoformat(), "value": job["payload"]["value"]})
                del log[:-1000]
        if not ok and job["attempt"] <= len(RETRY_DELAYS):
            self._push(job, RETRY_DELAYS[job["attempt"] - 1])

    def _expiry_loop(self) -> None:
        while not self._stop.wait(0.5):
            st = self._store()
            if st is None:
                return
            now = _now()
            with st.lock:
                expired = [(t, sid) for t in st.tenants.values() for sid, s in t.subscriptions.items()
                           if parse_time(s["expirationDateTime"]) <= now]
            for tenant, sid in expired:
                remove_subscription(st, tenant, sid, announce=True)

    # --- store listener ---

    def on_change(self, tenant: Tenant, change: Change) -> None:
        """Store listener: queue a notification for each subscription that ``change`` matches."""
        st = self._store()
        if st is None:
            return
        with st.lock:
            subs = [dict(s) for s in tenant.subscriptions.values()]
            folder = None   # unknown: matches every folder subscription
            if change.kind == "contact":
                current = tenant.contacts.get(change.owner or "", {}).get(change.object_id)
                if current is not None:
                    folder = current.get("parentFolderId") or "default"
                elif "parentFolderId" in (change.data or {}):
                    folder = change.data["parentFolderId"] or "default"
        for sub in subs:
            change_type = _matches(sub, tenant, change, folder)
            if change_type:
                payload = {"value": [notification(tenant, sub, change, change_type)]}
                self.enqueue(tenant, sub["notificationUrl"], payload, "change", sub["id"])


_NOTIFIERS: "weakref.WeakKeyDictionary[Store, Notifier]" = weakref.WeakKeyDictionary()


def init_store(st: Store) -> None:
    """Hook called by ``create_app`` once the store exists: start the notifier and listen to changes."""
    if st in _NOTIFIERS:
        return
    notifier = Notifier(st)
    _NOTIFIERS[st] = notifier
    st.add_listener(notifier.on_change)
    notifier.start()


def notifier_for(st: Store) -> Notifier:
    """The :class:`Notifier` of ``st`` (started on first use when ``init_store`` was not called)."""
    if st not in _NOTIFIERS:
        init_store(st)
    return _NOTIFIERS[st]


# --- matching and payloads ---------------------------------------------------------------------------------------


def _matches(sub: dict, tenant: Tenant, change: Change, folder: str | None) -> str | None:
    """The changeType to notify ``sub`` of for ``change``, or None."""
    match = sub.get("_match") or {}
    if match.get("kind") != change.kind:
        return None
    if match.get("owner") and match["owner"] != change.owner:
        return None
    if match.get("object") and match["object"] != change.object_id:
        return None
    if match.get("folder"):
        from .graph_outlook import default_contact_folder_id
        actual = folder if folder != "default" else default_contact_folder_id(tenant, change.owner or "")
        if actual is not None and actual != match["folder"]:
            return None
    change_type = change.change_type
    if change.kind in ("user", "group"):
        # Creation, restore and soft deletion of directory objects surface as "updated" (Graph docs).
        permanent = (change.data or {}).get("permanent", change.kind == "group")
        change_type = "deleted" if change_type == "deleted" and permanent else "updated"
    elif change_type == "restored":
        change_type = "created"
    wanted = {c.strip() for c in sub.get("changeType", "").split(",")}
    return change_type if change_type in wanted else None


_RESOURCE_SEGMENT = {"contact": "Contacts", "event": "Events", "message": "Messages"}


def notification(tenant: Tenant, sub: dict, change: Change, change_type: str) -> dict:
    """One ``changeNotification`` (without resource data) for ``change``."""
    if change.kind in OUTLOOK_KINDS:
        resource = f"Users/{change.owner}/{_RESOURCE_SEGMENT[change.kind]}/{change.object_id}"
        data = {"@odata.type": f"#Microsoft.Graph.{change.kind.capitalize()}", "@odata.id": resource,
                "@odata.etag": f'W/"{change.seq}"', "id": change.object_id}
    else:
        resource = f"{change.kind.capitalize()}s/{change.object_id}"
        data = {"@odata.type": f"#Microsoft.Graph.{change.kind.capitalize()}", "@odata.id": resource,
                "id": change.object_id, "organizationId": tenant.id, "sequenceNumber": change.seq}
    return {"id": str(uuid.uuid4()), "subscriptionId": sub["id"],
            "subscriptionExpirationDateTime": sub["expirationDateTime"], "changeType": change_type,
            "resource": resource, "resourceData": data, "clientState": sub.get("clientState"),
            "tenantId": tenant.id}


def lifecycle_payload(tenant: Tenant, sub: dict, event: str) -> dict:
    """A lifecycle notification collection (``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``)."""
    return {"value": [{"subscriptionId": sub["id"], "subscriptionExpirationDateTime": sub["expirationDateTime"],
                       "tenantId": tenant.id, "clientState": sub.get("clientState"), "lifecycleEvent": event}]}


def send_lifecycle(st: Store, tenant: Tenant, sub: dict, event: str) -> bool:
    """Queue a lifecycle event to the subscription's ``lifecycleNotificationUrl``; False when it has none."""
    url = sub.get("lifecycleNotificationUrl")
    if not url:
        return False
    notifier_for(st).enqueue(tenant, url, lifecycle_payload(tenant, sub, event), "lifecycle", sub["id"])
    return True


def remove_subscription(st: Store, tenant: Tenant, sid: str, *, announce: bool) -> dict | None:
    """Delete a subscription; with ``announce``, Outlook ones tell their lifecycle URL (``subscriptionRemoved``)."""
    with st.lock:
        sub = tenant.subscriptions.pop(sid, None)
    if sub is not None and announce and sub["_match"]["kind"] in OUTLOOK_KINDS:
        send_lifecycle(st, tenant, sub, "subscriptionRemoved")
    return sub


# --- resources, validation ---------------------------------------------------------------------------------------


def parse_resource(ctx: GraphContext, resource: Any) -> dict:
    """What a subscription's ``resource`` watches: ``{"kind", "owner"?, "object"?, "folder"?}``; 400 if unknown."""
    if not isinstance(resource, str) or not resource.strip():
        raise graph_error(400, "InvalidRequest", "The subscription needs a resource.")
    path = resource.strip().lstrip("/").split("?", 1)[0]
    path = re.sub(r"(\w+)\('([^']*)'\)", r"\1/\2", path)       # users('x') -> users/x
    parts = [p for p in path.split("/") if p]
    low = [p.lower() for p in parts]
    if low[:1] == ["me"]:
        parts, low = ["users", "me", *parts[1:]], ["users", "me", *low[1:]]

    def user(i: int) -> str:
        with store().lock:
            return resolve_user(ctx.tenant, parts[i])["id"]

    if low == ["users"]:
        return {"kind": "user"}
    if low == ["groups"]:
        return {"kind": "group"}
    if len(low) == 2 and low[0] == "users":
        return {"kind": "user", "object": user(1)}
    if len(low) in (2, 3) and low[0] == "groups" and (len(low) == 2 or low[2] in ("members", "owners")):
        with store().lock:
            if parts[1] not in ctx.tenant.groups:
                raise graph_error(404, "Request_ResourceNotFound", f"Resource '{parts[1]}' does not exist.")
        return {"kind": "group", "object": parts[1]}
    if len(low) >= 3 and low[0] == "users":
        rest = low[2:]
        if rest == ["contacts"]:
            return {"kind": "contact", "owner": user(1)}
        if len(rest) == 3 and rest[0] == "contactfolders" and rest[2] == "contacts":
            return {"kind": "contact", "owner": user(1), "folder": parts[3]}
        if rest in (["events"], ["calendar", "events"]):
            return {"kind": "event", "owner": user(1)}
        if rest == ["messages"] or (len(rest) == 3 and rest[0] == "mailfolders" and rest[2] == "messages"):
            return {"kind": "message", "owner": user(1)}
    raise graph_error(400, "InvalidRequest", f"The resource '{resource}' is not supported for change "
                      "notifications by the emulator (users, groups, users/{id}/contacts, "
                      "users/{id}/contactFolders/{id}/contacts, users/{id}/events, users/{id}/messages).")


def _check_permission(match: dict) -> None:
    if not has_permission(*PERMISSIONS[match["kind"]]):
        raise graph_error(403, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: "
                          f"The app needs one of {', '.join(PERMISSIONS[match['kind']])} to subscribe to "
                          "this resource.]")


def _check_expiration(value: Any, kind: str) -> datetime:
    try:
        when = parse_time(value)
    except ValueError as exc:
        raise graph_error(400, "InvalidRequest", "expirationDateTime must be an ISO 8601 date and time.") from exc
    now = _now()
    if when <= now:
        raise graph_error(400, "InvalidRequest", "Subscription expiration must be in the future.")
    limit = MAX_MINUTES[kind]
    if when > now + timedelta(minutes=limit, seconds=30):
        raise graph_error(400, "InvalidRequest", f"Subscription expiration can only be {limit} minutes in the "
                          "future.")
    return when


def validate_endpoint(url: Any, label: str) -> None:
    """Graph's handshake: POST ``{url}?validationToken=...``; the endpoint must echo the token within 10 s."""
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise graph_error(400, "InvalidRequest", f"{label} must be an absolute https URL.")
    if urlsplit(url).scheme == "http" and not _is_loopback(url):
        raise graph_error(400, "InvalidRequest", f"{label} must use HTTPS (the emulator allows http only on "
                          "loopback addresses).")
    token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
    target = url + ("&" if "?" in url else "?") + urlencode({"validationToken": token})
    try:
        resp = post_to_endpoint(target, data=b"", timeout=VALIDATION_TIMEOUT,
                                headers={"Content-Type": "text/plain; charset=utf-8"})
    except requests.Timeout as exc:
        raise graph_error(400, "ValidationError", "Subscription validation request timed out.") from exc
    except requests.RequestException as exc:
        raise graph_error(400, "ValidationError", f"Subscription validation request failed. Notification "
                          f"endpoint {label} could not be reached ({type(exc).__name__}).") from exc
    if resp.status_code != 200:
        raise graph_error(400, "ValidationError", "Subscription validation request failed. Must respond with 200 "
                          f"OK to this request (got {resp.status_code}).")
    if not resp.headers.get("Content-Type", "").lower().startswith("text/plain"):
        raise graph_error(400, "ValidationError", "Subscription validation request failed. The response must "
                          "have Content-Type text/plain.")
    if resp.text != token:
        raise graph_error(400, "ValidationError", "Subscription validation request failed. Response must exactly "
                          "match validationToken query parameter.")


# --- routes ------------------------------------------------------------------------------------------------------


def subscription_view(sub: dict) -> dict:
    """The Graph JSON of a stored subscription."""
    return public(sub)


def _own_subscription(ctx: GraphContext, sid: str) -> dict:
    sub = ctx.tenant.subscriptions.get(sid)
    if sub is None or sub.get("_appId") != ctx.app_id:
        raise graph_error(404, "ResourceNotFound", f"The object was not found. Subscription '{sid}'.")
    return sub


@subscriptions_bp.post("/v1.0/subscriptions")
def create_subscription():
    """Validate the endpoint(s) and create a subscription: 201."""
    ctx = graph_context()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise graph_error(400, "InvalidRequest", "The request body must be a JSON subscription.")
    match = parse_resource(ctx, body.get("resource"))
    _check_permission(match)
    change_types = [c.strip() for c in str(body.get("changeType") or "").split(",") if c.strip()]
    allowed = ("updated", "deleted") if match["kind"] in ("user", "group") else ("created", "updated", "deleted")
    if not change_types or any(c not in allowed for c in change_types):
        raise graph_error(400, "InvalidRequest", f"changeType must be a comma-separated list of "
                          f"{', '.join(allowed)} for this resource.")
    client_state = body.get("clientState")
    if client_state is not None and (not isinstance(client_state, str) or len(client_state) > 128):
        raise graph_error(400, "InvalidRequest", "clientState must be a string of at most 128 characters.")
    if body.get("includeResourceData"):
        raise graph_error(400, "InvalidRequest", "Rich notifications (includeResourceData) are not supported by "
                          "the emulator.")
    expires = _check_expiration(body.get("expirationDateTime"), match["kind"])
    if match["kind"] in ("user", "group"):
        with store().lock:
            used = sum(1 for s in ctx.tenant.subscriptions.values()
                       if s["_appId"] == ctx.app_id and s["_match"]["kind"] in ("user", "group"))
        if used >= DIRECTORY_QUOTA:
            raise graph_error(403, "ExtensionError", f"Subscription quota exceeded: at most {DIRECTORY_QUOTA} "
                              "directory subscriptions per application and tenant.")
    validate_endpoint(body.get("notificationUrl"), "notificationUrl")
    if body.get("lifecycleNotificationUrl"):
        validate_endpoint(body["lifecycleNotificationUrl"], "lifecycleNotificationUrl")
    sid = str(uuid.uuid4())
    sub = {"id": sid, "resource": body["resource"], "applicationId": ctx.app_id,
           "changeType": ",".join(change_types), "clientState": client_state,
           "notificationUrl": body["notificationUrl"], "notificationQueryOptions": None,
           "lifecycleNotificationUrl": body.get("lifecycleNotificationUrl"),
           "expirationDateTime": graph_time(expires),
           "creatorId": ctx.app.get("servicePrincipalId") or ctx.app.get("id") or ctx.app_id,
           "includeResourceData": None, "latestSupportedTlsVersion": body.get("latestSupportedTlsVersion") or "v1_2",
           # No notificationContentType: the docs' sample shows it, but v1.0's CSDL has no such property.
           "encryptionCertificate": None, "encryptionCertificateId": None, "notificationUrlAppId": None,
           "_appId": ctx.app_id, "_match": match}
    with store().lock:
        ctx.tenant.subscriptions[sid] = sub
    return graph_json({"@odata.context": odata_context("subscriptions", entity=True), **subscription_view(sub)},
                      201)


@subscriptions_bp.get("/v1.0/subscriptions")
def list_subscriptions():
    """The calling app's subscriptions in its tenant."""
    ctx = graph_context()
    with store().lock:
        subs = [subscription_view(s) for s in ctx.tenant.subscriptions.values() if s["_appId"] == ctx.app_id]
    return graph_json({"@odata.context": odata_context("subscriptions"), "value": subs})


@subscriptions_bp.get("/v1.0/subscriptions/<sid>")
def get_subscription(sid: str):
    """One subscription of the calling app."""
    ctx = graph_context()
    with store().lock:
        view = subscription_view(_own_subscription(ctx, sid))
    return graph_json({"@odata.context": odata_context("subscriptions", entity=True), **view})


@subscriptions_bp.patch("/v1.0/subscriptions/<sid>")
def renew_subscription(sid: str):
    """Renew (and reauthorize): ``{"expirationDateTime"}`` and/or a new ``notificationUrl``: 200."""
    ctx = graph_context()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise graph_error(400, "InvalidRequest", "The request body must be JSON.")
    if "lifecycleNotificationUrl" in body:
        raise graph_error(400, "InvalidRequest", "lifecycleNotificationUrl can only be set when the subscription "
                          "is created.")
    with store().lock:
        sub = _own_subscription(ctx, sid)
        match = sub["_match"]
    _check_permission(match)
    expires = _check_expiration(body["expirationDateTime"], match["kind"]) if "expirationDateTime" in body \
        else None
    if "notificationUrl" in body:
        validate_endpoint(body["notificationUrl"], "notificationUrl")
    with store().lock:
        sub = _own_subscription(ctx, sid)
        if expires:
            sub["expirationDateTime"] = graph_time(expires)
        if "notificationUrl" in body:
            sub["notificationUrl"] = body["notificationUrl"]
        view = subscription_view(sub)
    return graph_json({"@odata.context": odata_context("subscriptions", entity=True), **view})


@subscriptions_bp.delete("/v1.0/subscriptions/<sid>")
def delete_subscription(sid: str):
    """Delete a subscription: 204."""
    ctx = graph_context()
    with store().lock:
        _own_subscription(ctx, sid)
        ctx.tenant.subscriptions.pop(sid, None)
    return Response(status=204)


@subscriptions_bp.post("/v1.0/subscriptions/<sid>/reauthorize")
@subscriptions_bp.post("/v1.0/subscriptions/<sid>/microsoft.graph.reauthorize")
def reauthorize_subscription(sid: str):
    """Reauthorize without changing the expiry (after ``reauthorizationRequired``): 204."""
    ctx = graph_context()
    with store().lock:
        match = _own_subscription(ctx, sid)["_match"]
    _check_permission(match)
    return Response(status=204)
