"""Graph mail: ``sendMail`` (JSON or base64 MIME), drafts, small attachments, upload sessions, ``send``.

Every message that leaves goes to the tenant's outbox (``GET /_emulator/tenants/{tid}/outbox``) as
``{"id", "from", "to", "cc", "bcc", "subject", "bodyType", "body", "attachments": [{"name", "contentType", "size",
"sha256"}], "sentAt", "savedToSentItems"}``. Attachment bytes are hashed, not kept.

Upload sessions answer on the emulator itself, at an opaque Outlook-style URL
``B/api/v2.0/Users('{oid}@{tid}')/Messages('{id}')/AttachmentSessions('{sid}')?authtoken=...`` that takes
``PUT``s without ``Authorization``, in order, each with ``Content-Range``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.utils import getaddresses

from flask import Blueprint, Response, request

from .graph_common import (BadToken, graph_context, graph_error, graph_json, mailbox_slot, odata_context,
                           read_token, require_permission, resolve_user, sign_token, store, base_url)
from .store import Tenant, UnknownTenant

mail_bp = Blueprint("m365_mail", __name__)

MAX_REQUEST = 4 * 1024 * 1024          # Graph refuses request bodies over 4 MB
SMALL_ATTACHMENT_MAX = 3 * 1024 * 1024  # larger files need an upload session ...
UPLOAD_MIN = 3 * 1024 * 1024            # ... which refuses smaller ones
UPLOAD_MAX = 150 * 1024 * 1024
UPLOAD_CHUNK_MAX = 4 * 1024 * 1024
UPLOAD_SESSION_TTL = timedelta(hours=6)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def sender_mailbox(tenant: Tenant, uid: str) -> dict:
    """The user whose mailbox sends; 404 when the user is unknown or has no mailbox (no ``mail``)."""
    with store().lock:
        user = resolve_user(tenant, uid)
    if not user.get("mail"):
        raise graph_error(404, "MailboxNotEnabledForRESTAPI",
                          "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
    return user


def _check_size() -> None:
    if (request.content_length or 0) > MAX_REQUEST:
        raise graph_error(413, "RequestEntityTooLarge", "The request body is larger than 4 MB; attach files "
                          "over 3 MB through an upload session (createUploadSession).")


def _decode_attachment(att: dict) -> dict:
    """A ``#microsoft.graph.fileAttachment`` as stored: name, type, size, sha256 (bytes dropped)."""
    if (att.get("@odata.type") or "").lower() != "#microsoft.graph.fileattachment":
        raise graph_error(400, "ErrorInvalidRequest", "Only #microsoft.graph.fileAttachment attachments are "
                          "supported by the emulator.")
    try:
        data = base64.b64decode(att.get("contentBytes") or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise graph_error(400, "ErrorInvalidRequest", "The attachment's contentBytes is not valid base64.") from exc
    if not att.get("name"):
        raise graph_error(400, "ErrorInvalidRequest", "The attachment needs a name.")
    return {"id": uuid.uuid4().hex, "name": att["name"], "contentType": att.get("contentType")
            or "application/octet-stream", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "isInline": bool(att.get("isInline")), "contentId": att.get("contentId")}


def _addresses(recipients) -> list[str]:
    out = []
    for r in recipients or []:
        addr = ((r or {}).get("emailAddress") or {}).get("address")
        if not addr or "@" not in addr:
            raise graph_error(400, "ErrorInvalidRecipients", "At least one recipient isn't valid.")
        out.append(addr)
    return out


def _message_from_json(msg: dict) -> dict:
    """The stored form of a JSON message (draft or sendMail)."""
    if not isinstance(msg, dict):
        raise graph_error(400, "ErrorInvalidRequest", "The request body must contain a message object.")
    body = msg.get("body") or {}
    ctype = (body.get("contentType") or "text").lower()
    if ctype not in ("text", "html"):
        raise graph_error(400, "ErrorInvalidRequest", f"Invalid body contentType {body.get('contentType')!r}.")
    return {"subject": msg.get("subject") or "", "bodyType": ctype, "body": body.get("content") or "",
            "to": _addresses(msg.get("toRecipients")), "cc": _addresses(msg.get("ccRecipients")),
            "bcc": _addresses(msg.get("bccRecipients")), "importance": (msg.get("importance") or "normal").lower(),
            "attachments": [_decode_attachment(a) for a in msg.get("attachments") or []],
            "extended": _extended(msg.get("singleValueExtendedProperties"))}


def _extended(props) -> dict:
    """``singleValueExtendedProperties`` as stored: property id (lower case) -> value."""
    out = {}
    for prop in props or []:
        if not isinstance(prop, dict) or not isinstance(prop.get("id"), str) or "value" not in prop:
            raise graph_error(400, "ErrorInvalidRequest", "An extended property needs an 'id' and a 'value'.")
        out[prop["id"].lower()] = str(prop["value"])
    return out


def _message_from_mime() -> dict:
    """The stored form of a ``text/plain`` base64 MIME body; 400 ``ErrorMimeContentInvalidBase64String``."""
    raw = re.sub(rb"\s+", b"", request.get_data())
    try:
        mime = base64.b64decode(raw, validate=True)
        if not raw:
            raise ValueError("empty")
    except (binascii.Error, ValueError) as exc:
        raise graph_error(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.") \
            from exc
    parsed = message_from_bytes(mime, policy=policy.default)
    body_part = parsed.get_body(preferencelist=("html", "plain"))
    attachments = []
    for part in parsed.iter_attachments():
        data = part.get_payload(decode=True) or b""
        attachments.append({"id": uuid.uuid4().hex, "name": part.get_filename() or "attachment",
                            "contentType": part.get_content_type(), "size": len(data),
                            "sha256": hashlib.sha256(data).hexdigest(), "isInline": False, "contentId": None})

    def addrs(name: str) -> list[str]:
        return [a for _, a in getaddresses(parsed.get_all(name, [])) if a]

    return {"subject": str(parsed.get("Subject") or ""),
            "bodyType": "html" if body_part is not None and body_part.get_content_subtype() == "html" else "text",
            "body": body_part.get_content() if body_part is not None else "",
            "to": addrs("To"), "cc": addrs("Cc"), "bcc": addrs("Bcc"), "importance": "normal",
            "attachments": attachments}


def _deliver(tenant: Tenant, user: dict, msg: dict, save: bool) -> dict:
    """Put a sent message into the outbox (oldest first) and return the entry."""
    if not (msg["to"] or msg["cc"] or msg["bcc"]):
        raise graph_error(400, "ErrorInvalidRecipients", "At least one recipient isn't valid., A message can't "
                          "be sent because it contains no recipients.")
    entry = {"id": uuid.uuid4().hex, "from": user["mail"], "to": list(msg["to"]), "cc": list(msg["cc"]),
             "bcc": list(msg["bcc"]), "subject": msg["subject"], "bodyType": msg["bodyType"], "body": msg["body"],
             "attachments": [{k: a[k] for k in ("name", "contentType", "size", "sha256")}
                             for a in msg["attachments"]],
             "sentAt": _now().isoformat(timespec="milliseconds").replace("+00:00", "Z"), "savedToSentItems": save}
    with store().lock:
        tenant.outbox.append(entry)
        if save:  # Sent Items of the sending mailbox, with the message's extended properties
            tenant.extra.setdefault("sentItems", {}).setdefault(user["id"], []).append(
                {**entry, "extended": dict(msg.get("extended") or {}),
                 "internetMessageId": f"<{entry['id'][:16]}@emulator.local>"})
    return entry


_EXTENDED_FILTER = re.compile(
    r"^singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'((?:[^']|'')*)'\s+and\s+"
    r"\1/value\s+eq\s+'((?:[^']|'')*)'\s*\)$", re.I)


@mail_bp.get("/v1.0/users/<uid>/mailFolders/<folder>/messages")
def folder_messages(uid: str, folder: str):
    """Messages of a mail folder; the emulator keeps Sent Items (``sentitems``) and Drafts (``drafts``), by their
    well-known names. ``$filter`` on a single-value extended property (``singleValueExtendedProperties/any(ep:ep/id
    eq '...' and ep/value eq '...')``) finds a message by a marker its sender set."""
    ctx = graph_context()
    require_permission("Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite")
    user = sender_mailbox(ctx.tenant, uid)
    name = folder.lower()
    if name not in ("sentitems", "drafts"):
        raise graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    with store().lock:
        if name == "sentitems":
            items = [{"id": m["id"], "subject": m["subject"], "internetMessageId": m["internetMessageId"],
                      "sentDateTime": m["sentAt"], "isDraft": False, "to": m["to"], "extended": m["extended"]}
                     for m in ctx.tenant.extra.get("sentItems", {}).get(user["id"], [])]
        else:
            items = [{"id": mid, "subject": d["subject"], "internetMessageId": f"<{mid[:16]}@emulator.local>",
                      "sentDateTime": None, "isDraft": True, "to": d["to"], "extended": d.get("extended") or {}}
                     for mid, d in ctx.tenant.messages.get(user["id"], {}).items()]
    text = request.args.get("$filter")
    if text:
        match = _EXTENDED_FILTER.match(text.strip())
        if not match:
            raise graph_error(400, "ErrorInvalidUrlQueryFilter", "The emulator filters mail folders by a "
                              "single-value extended property only.")
        prop, value = match.group(2).replace("''", "'").lower(), match.group(3).replace("''", "'")
        items = [m for m in items if m["extended"].get(prop) == value]
    value = [{"id": m["id"], "subject": m["subject"], "internetMessageId": m["internetMessageId"],
              "sentDateTime": m["sentDateTime"], "isDraft": m["isDraft"],
              "toRecipients": [{"emailAddress": {"address": a}} for a in m["to"]]} for m in items]
    return graph_json({"@odata.context": f"{base_url()}/v1.0/$metadata#users('{uid}')/mailFolders('{folder}')/"
                       "messages", "value": value})


@mail_bp.post("/v1.0/users/<uid>/sendMail")
@mail_bp.post("/v1.0/users/<uid>/microsoft.graph.sendMail")
def send_mail(uid: str):
    """Send a message at once: JSON ``{"message", "saveToSentItems"}`` or base64 MIME; 202 with no body."""
    ctx = graph_context()
    require_permission("Mail.Send")
    user = sender_mailbox(ctx.tenant, uid)
    _check_size()
    with mailbox_slot(ctx.tenant, user["id"]):
        if request.mimetype == "text/plain":
            msg, save = _message_from_mime(), True
        else:
            payload = request.get_json(silent=True)
            if not isinstance(payload, dict) or "message" not in payload:
                raise graph_error(400, "ErrorInvalidRequest", "The request body must be JSON with a 'message'.")
            msg = _message_from_json(payload["message"])
            save = payload.get("saveToSentItems", True) not in (False, "false", "False")
        _deliver(ctx.tenant, user, msg, bool(save))
    return Response(status=202)


# --- drafts ----------------------------------------------------------------------------------------------------


def _draft_view(user: dict, mid: str, draft: dict) -> dict:
    def recips(addrs):
        return [{"emailAddress": {"name": a, "address": a}} for a in addrs]

    content = draft["body"]
    if draft["bodyType"] == "html" and "<html" not in content.lower():
        content = ('<html><head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
                   f"</head><body>{content}</body></html>")
    key = hashlib.sha256(f"{mid}{draft['modified']}{len(draft['attachments'])}".encode()).hexdigest()[:24]
    return {"@odata.etag": f'W/"{key}"', "id": mid, "createdDateTime": draft["created"],
            "lastModifiedDateTime": draft["modified"], "changeKey": key, "categories": [],
            "receivedDateTime": draft["created"], "sentDateTime": None,
            "hasAttachments": bool(draft["attachments"]), "internetMessageId": f"<{mid[:16]}@emulator.local>",
            "subject": draft["subject"], "bodyPreview": re.sub(r"<[^>]+>", "", draft["body"])[:255],
            "importance": draft["importance"], "parentFolderId": "Drafts", "conversationId": f"conv-{mid}",
            "isDeliveryReceiptRequested": False, "isReadReceiptRequested": False, "isRead": True,
            "isDraft": True, "webLink": f"{base_url()}/owa/?ItemID={mid}", "inferenceClassification": "focused",
            "body": {"contentType": draft["bodyType"], "content": content}, "sender": None, "from": None,
            "toRecipients": recips(draft["to"]), "ccRecipients": recips(draft["cc"]),
            "bccRecipients": recips(draft["bcc"]), "replyTo": [], "flag": {"flagStatus": "notFlagged"}}


def _draft(tenant: Tenant, user: dict, mid: str) -> dict:
    draft = tenant.messages.get(user["id"], {}).get(mid)
    if draft is None:
        raise graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    return draft


@mail_bp.post("/v1.0/users/<uid>/messages")
def create_draft(uid: str):
    """Create a draft in Drafts (JSON message or base64 MIME): 201 with the message."""
    ctx = graph_context()
    require_permission("Mail.ReadWrite")
    user = sender_mailbox(ctx.tenant, uid)
    _check_size()
    if request.mimetype == "text/plain":
        msg = _message_from_mime()
    else:
        msg = _message_from_json(request.get_json(silent=True))
    mid = "AAMkDraft" + uuid.uuid4().hex
    stamp = _iso(_now())
    with mailbox_slot(ctx.tenant, user["id"]), store().lock:
        draft = {**msg, "created": stamp, "modified": stamp}
        ctx.tenant.messages.setdefault(user["id"], {})[mid] = draft
        view = _draft_view(user, mid, draft)
    return graph_json({"@odata.context": odata_context(f"users('{user['id']}')/messages", entity=True), **view},
                      201)


@mail_bp.get("/v1.0/users/<uid>/messages/<mid>")
def get_draft(uid: str, mid: str):
    """A draft not sent yet."""
    ctx = graph_context()
    require_permission("Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite")
    user = sender_mailbox(ctx.tenant, uid)
    with store().lock:
        view = _draft_view(user, mid, _draft(ctx.tenant, user, mid))
    return graph_json({"@odata.context": odata_context(f"users('{user['id']}')/messages", entity=True), **view})


@mail_bp.delete("/v1.0/users/<uid>/messages/<mid>")
def delete_draft(uid: str, mid: str):
    """Delete a draft (moved to Deleted Items in Exchange; the emulator drops it): 204."""
    ctx = graph_context()
    require_permission("Mail.ReadWrite")
    user = sender_mailbox(ctx.tenant, uid)
    with store().lock:
        _draft(ctx.tenant, user, mid)
        ctx.tenant.messages.get(user["id"], {}).pop(mid, None)
    return Response(status=204)


@mail_bp.post("/v1.0/users/<uid>/messages/<mid>/attachments")
def add_attachment(uid: str, mid: str):
    """Attach a file of up to 3 MB to a draft: 201 with the attachment."""
    ctx = graph_context()
    require_permission("Mail.ReadWrite")
    user = sender_mailbox(ctx.tenant, uid)
    _check_size()
    att = _decode_attachment(request.get_json(silent=True) or {})
    if att["size"] > SMALL_ATTACHMENT_MAX:
        raise graph_error(413, "RequestEntityTooLarge", "Attachments over 3 MB need an upload session "
                          "(createUploadSession).")
    with store().lock:
        draft = _draft(ctx.tenant, user, mid)
        draft["attachments"].append(att)
        draft["modified"] = _iso(_now())
    return graph_json({"@odata.context": odata_context(f"users('{user['id']}')/messages('{mid}')/attachments",
                                                       entity=True),
                       "@odata.type": "#microsoft.graph.fileAttachment", "id": att["id"],
                       "lastModifiedDateTime": draft["modified"], "name": att["name"],
                       "contentType": att["contentType"], "size": att["size"], "isInline": att["isInline"],
                       "contentId": att["contentId"], "contentLocation": None}, 201)


@mail_bp.post("/v1.0/users/<uid>/messages/<mid>/send")
@mail_bp.post("/v1.0/users/<uid>/messages/<mid>/microsoft.graph.send")
def send_draft(uid: str, mid: str):
    """Send a draft (no body, ``Content-Length: 0``): 202; it leaves Drafts for the outbox."""
    ctx = graph_context()
    require_permission("Mail.Send")
    user = sender_mailbox(ctx.tenant, uid)
    if request.content_length is None and "chunked" not in request.headers.get("Transfer-Encoding", ""):
        raise graph_error(411, "LengthRequired", "The request must have a Content-Length header (0).")
    if request.get_data():
        raise graph_error(400, "ErrorInvalidRequest", "The send action takes no request body; send "
                          "Content-Length: 0.")
    with mailbox_slot(ctx.tenant, user["id"]):
        with store().lock:
            draft = _draft(ctx.tenant, user, mid)
            if any(s["mid"] == mid for s in _sessions(ctx.tenant).values()):
                raise graph_error(400, "ErrorInvalidRequest", "An attachment upload to this message is still "
                                  "in progress.")
        _deliver(ctx.tenant, user, draft, True)
        with store().lock:
            ctx.tenant.messages.get(user["id"], {}).pop(mid, None)
    return Response(status=202)


# --- upload sessions -------------------------------------------------------------------------------------------


def _sessions(tenant: Tenant) -> dict:
    return tenant.extra.setdefault("uploadSessions", {})


@mail_bp.post("/v1.0/users/<uid>/messages/<mid>/attachments/createUploadSession")
@mail_bp.post("/v1.0/users/<uid>/messages/<mid>/attachments/microsoft.graph.createUploadSession")
def create_upload_session(uid: str, mid: str):
    """Start a large-attachment upload (3-150 MB): 201 ``uploadSession`` with an opaque ``uploadUrl``."""
    ctx = graph_context()
    require_permission("Mail.ReadWrite")
    if ctx.tenant.cloud in ("usgov", "usgov-dod"):
        raise graph_error(501, "NotImplemented", "This operation target is not yet supported.")
    user = sender_mailbox(ctx.tenant, uid)
    item = (request.get_json(silent=True) or {}).get("AttachmentItem") or {}
    if (item.get("attachmentType") or "file") != "file" or not item.get("name"):
        raise graph_error(400, "ErrorInvalidRequest", "AttachmentItem needs attachmentType 'file' and a name.")
    try:
        size = int(item.get("size"))
    except (TypeError, ValueError) as exc:
        raise graph_error(400, "ErrorInvalidRequest", "AttachmentItem needs its size in bytes.") from exc
    if size < UPLOAD_MIN:
        raise graph_error(400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
                          "Attachment size must be greater than the minimum size (3 MB); attach it directly.")
    if size > UPLOAD_MAX:
        raise graph_error(400, "ErrorAttachmentSizeExceedsMaximum", "Attachments are limited to 150 MB.")
    sid = uuid.uuid4().hex
    expires = _now() + UPLOAD_SESSION_TTL
    with store().lock:
        _draft(ctx.tenant, user, mid)
        _sessions(ctx.tenant)[sid] = {"uid": user["id"], "mid": mid, "name": item["name"], "size": size,
                                      "contentType": item.get("contentType") or "application/octet-stream",
                                      "isInline": bool(item.get("isInline")), "contentId": item.get("contentId"),
                                      "received": 0, "hash": hashlib.sha256(), "expires": expires}
    token = sign_token(ctx.tenant, {"upload": sid})
    url = (f"{base_url()}/api/v2.0/Users('{user['id']}@{ctx.tenant.id}')/Messages('{mid}')"
           f"/AttachmentSessions('{sid}')?authtoken={token}")
    return graph_json({"@odata.context": f"{base_url()}/v1.0/$metadata#microsoft.graph.uploadSession",
                       "uploadUrl": url, "expirationDateTime": _iso(expires), "nextExpectedRanges": ["0-"]}, 201)


def _upload_session(owner: str, mid: str, sid: str) -> tuple[Tenant, dict]:
    if request.headers.get("Authorization"):
        raise graph_error(401, "InvalidAuthenticationToken", "The upload URL carries its own token: send the PUT "
                          "without an Authorization header.")
    _, _, tid = owner.rpartition("@")
    try:
        tenant = store().tenant(tid)
        state = read_token(tenant, request.args.get("authtoken", ""))
    except (UnknownTenant, BadToken) as exc:
        raise graph_error(401, "InvalidAuthenticationToken", "The upload session's authtoken is invalid.") from exc
    session = _sessions(tenant).get(sid)
    if state.get("upload") != sid or session is None or session["mid"] != mid:
        raise graph_error(404, "ErrorItemNotFound", "The upload session does not exist or has ended.")
    if session["expires"] < _now():
        raise graph_error(404, "ErrorItemNotFound", "The upload session has expired.")
    return tenant, session


_UPLOAD_PATH = "/api/v2.0/Users('<owner>')/Messages('<mid>')/AttachmentSessions('<sid>')"


@mail_bp.put(_UPLOAD_PATH)
def upload_chunk(owner: str, mid: str, sid: str):
    """One byte range of the attachment, in order: 200 with the next range, or 201 + ``Location`` at the end."""
    tenant, session = _upload_session(owner, mid, sid)
    m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", request.headers.get("Content-Range", "").strip())
    if not m:
        raise graph_error(400, "ErrorInvalidRequest", "Content-Range must be 'bytes {start}-{end}/{total}'.")
    start, end, total = (int(x) for x in m.groups())
    data = request.get_data()
    if total != session["size"]:
        raise graph_error(400, "ErrorInvalidRequest", f"Content-Range total {total} differs from the session's "
                          f"attachment size {session['size']}.")
    if end < start or end - start + 1 != len(data):
        raise graph_error(400, "ErrorInvalidRequest", "The body length does not match Content-Range.")
    if len(data) > UPLOAD_CHUNK_MAX:
        raise graph_error(400, "ErrorInvalidRequest", "Upload ranges are limited to 4 MB each.")
    with store().lock:
        if start != session["received"]:
            raise graph_error(416, "ErrorInvalidRequest", f"Ranges must be uploaded in order; the next expected "
                              f"range starts at {session['received']}.")
        session["hash"].update(data)
        session["received"] = end + 1
        if session["received"] < session["size"]:
            return graph_json({"@odata.context": f"{base_url()}/api/v2.0/$metadata#Microsoft.OutlookServices."
                               "UploadSession", "ExpirationDateTime": _iso(session["expires"]),
                               "nextExpectedRanges": [str(session["received"])]})
        _sessions(tenant).pop(sid, None)
        att_id = "AAMkAtt" + uuid.uuid4().hex
        draft = tenant.messages.get(session["uid"], {}).get(mid)
        if draft is None:
            raise graph_error(404, "ErrorItemNotFound", "The message of this upload session no longer exists.")
        draft["attachments"].append({"id": att_id, "name": session["name"], "contentType": session["contentType"],
                                     "size": session["size"], "sha256": session["hash"].hexdigest(),
                                     "isInline": session["isInline"], "contentId": session["contentId"]})
        draft["modified"] = _iso(_now())
    location = f"{base_url()}/api/v2.0/Users('{owner}')/Messages('{mid}')/Attachments('{att_id}')"
    return Response(status=201, headers={"Location": location})


@mail_bp.delete(_UPLOAD_PATH)
def cancel_upload(owner: str, mid: str, sid: str):
    """Cancel an upload session: 204."""
    tenant, _ = _upload_session(owner, mid, sid)
    with store().lock:
        _sessions(tenant).pop(sid, None)
    return Response(status=204)
