"""Sending one message through Microsoft Graph as a mailbox: ``sendMail``, or a draft with an upload session.

Microsoft's limits decide the path: a Graph request body is at most 4 MB, so attachments under 3 MB travel inside
the request as base64 ``fileAttachment``s; a file of 3 MB or more needs a draft (``POST /users/{sender}/messages``),
an upload session (``createUploadSession``, sequential byte ranges under 4 MB to an opaque URL that takes no token)
and ``send``. Drafts need the Mail.ReadWrite application permission besides Mail.Send.
"""
from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import quote

from ..exceptions import (
    ConnectionFailedError,
    GraphError,
    MalformedResponseError,
    NotFoundError,
    PermissionMissingError,
)
from ..graph import GraphClient
from ..graph.errors import parse_error
from ..host import MailAttachment

log = logging.getLogger("flask_pbx365.mail")

INLINE_MAX = 3 * 1024 * 1024        # attachments smaller than this go inside the request
REQUEST_MAX = 4 * 1024 * 1024       # Graph refuses larger request bodies
#: Our named property on each message (a fixed GUID of this project's property set).
MARKER_PROPERTY = "String {5d4f1b7e-3c2a-4e8f-9b61-0a7c2e9d4f13} Name PBX365MessageId"
CHUNK_SIZE = 12 * 320 * 1024        # 3.75 MiB: under the 4 MB range limit, a multiple of 320 KiB as Microsoft advises


@dataclass
class Outgoing:
    """A message as the mail job sends it."""

    sender: str
    to: list[str]
    subject: str
    body: str
    body_type: str = "text"
    save_to_sent_items: bool = True
    attachments: list[MailAttachment] = field(default_factory=list)
    #: Our id for the message, set on it as a single-value extended property, so that after an uncertain send
    #: (the connection dropped, the answer was lost) Sent Items tells whether it went out.
    marker: str | None = None
    #: Seconds to keep looking in Sent Items before concluding that an uncertain send did not go out.
    reconcile_seconds: float = 10.0


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def file_attachment(attachment: MailAttachment) -> dict:
    """A ``#microsoft.graph.fileAttachment`` with the bytes as base64 ``contentBytes``."""
    return {"@odata.type": "#microsoft.graph.fileAttachment", "name": attachment.name,
            "contentType": attachment.content_type,
            "contentBytes": base64.b64encode(attachment.data).decode("ascii")}


def graph_message(message: Outgoing, attachments: list[MailAttachment]) -> dict:
    """The Graph ``message`` resource for ``message`` with the given (small) attachments."""
    body = {"subject": message.subject,
            "body": {"contentType": "html" if message.body_type == "html" else "text", "content": message.body},
            "toRecipients": [{"emailAddress": {"address": address}} for address in message.to]}
    if attachments:
        body["attachments"] = [file_attachment(a) for a in attachments]
    if message.marker:
        body["singleValueExtendedProperties"] = [{"id": MARKER_PROPERTY, "value": message.marker}]
    return body


def find_marked(client: GraphClient, user: str, message: Outgoing, folder: str) -> list[str]:
    """Ids of the messages in the sender's well-known ``folder`` (``sentitems``, ``drafts``) carrying
    ``message.marker``."""
    flt = (f"singleValueExtendedProperties/any(ep:ep/id eq '{MARKER_PROPERTY}' and "
           f"ep/value eq '{message.marker}')")
    found = client.get(f"{user}/mailFolders/{folder}/messages", params={"$filter": flt, "$select": "id"},
                       mailbox=message.sender)
    return [m["id"] for m in found.get("value") or [] if isinstance(m, dict) and m.get("id")]


def in_sent_items(client: GraphClient, user: str, message: Outgoing) -> bool:
    """Whether the message with ``message.marker`` is in the sender's Sent Items, looking for up to
    ``message.reconcile_seconds`` (Exchange files a sent message within seconds)."""
    deadline = time.monotonic() + message.reconcile_seconds
    while True:
        try:
            found = find_marked(client, user, message, "sentitems")
        except GraphError as exc:
            raise _unverifiable("The connection dropped after the message was handed to Microsoft 365", exc) \
                from exc
        if found:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


def _unverifiable(what: str, exc: GraphError) -> GraphError:
    """The error for a send that may have gone out while Sent Items cannot say (``exc``: why not)."""
    return GraphError(f"{what}, and the sender's Sent Items could not be checked ({exc}), so it may have been sent: "
                      "check the sender's Sent Items before sending it again. Granting Mail.ReadWrite lets the PBX "
                      "check by itself.", status=exc.status, code="mayHaveBeenSent", request_id=exc.request_id)


def _uncertain(exc: GraphError) -> bool:
    """The request may have been carried out although no usable answer came: a dropped connection, a gateway
    error, or an answer that is not the one Graph documents (a garbled body, an unexpected success status)."""
    return (isinstance(exc, (ConnectionFailedError, MalformedResponseError)) or exc.status in (502, 503, 504)
            or 200 <= exc.status < 300)


def _sender_path(message: Outgoing) -> str:
    return f"/users/{quote(message.sender, safe='@')}"


def _inline_payload(message: Outgoing) -> bytes | None:
    """The ``sendMail`` body when ``message`` fits one request (no attachment of 3 MB or more, 4 MB in all);
    None when it needs a draft and ``send``."""
    if any(len(a.data) >= INLINE_MAX for a in message.attachments):
        return None
    payload = json.dumps({"message": graph_message(message, message.attachments),
                          "saveToSentItems": message.save_to_sent_items}).encode()
    return payload if len(payload) <= REQUEST_MAX else None


def takes_draft(message: Outgoing) -> bool:
    """Whether ``message`` goes through a draft and ``send`` rather than one ``sendMail``."""
    return _inline_payload(message) is None


def went_out_before(client: GraphClient, message: Outgoing) -> bool:
    """For a message whose earlier job died while sending it: True when it went out then (it is in Sent Items);
    otherwise its leftover drafts are deleted and False says it is safe to send it now.

    Raises :class:`GraphError` when that cannot be told: no marker, no copy kept in Sent Items (a ``sendMail`` with
    saving turned off), or Sent Items not readable.
    """
    if not message.marker or not (message.save_to_sent_items or takes_draft(message)):
        raise GraphError("The worker stopped while this email was being sent, and no copy of it is kept in Sent "
                         "Items (saving to Sent Items is off), so it may have been sent: check with the recipients "
                         "before sending it again.", code="mayHaveBeenSent")
    user = _sender_path(message)
    try:
        if find_marked(client, user, message, "sentitems"):
            return True
        leftovers = find_marked(client, user, message, "drafts")
    except GraphError as exc:
        raise _unverifiable("The worker stopped while this email was being sent", exc) from exc
    for draft_id in leftovers:
        _discard_draft(client, f"{user}/messages/{quote(draft_id, safe='')}", message.sender)
    return False


def send_message(client: GraphClient, message: Outgoing) -> str:
    """Send ``message`` as ``message.sender``; returns ``"sendMail"`` or ``"draft"`` (the path taken)."""
    try:
        return _send(client, message)
    except NotFoundError as exc:
        raise NotFoundError(
            f"Microsoft 365 has no mailbox for the sender {message.sender} (the user does not exist in the "
            "directory, or has no Exchange Online license): enter a licensed user or shared mailbox as the sender "
            f"on the Mail tab. {exc}", status=exc.status, code=exc.code, request_id=exc.request_id) from exc


def _send(client: GraphClient, message: Outgoing) -> str:
    user = _sender_path(message)
    payload = _inline_payload(message)
    if payload is not None:
        _send_mail(client, user, message, payload)
        return "sendMail"
    small = [a for a in message.attachments if len(a.data) < INLINE_MAX]
    large = [a for a in message.attachments if len(a.data) >= INLINE_MAX]
    _send_with_draft(client, user, message, small, large)
    return "draft"


def _send_mail(client: GraphClient, user: str, message: Outgoing, payload: bytes) -> None:
    """``sendMail``, exactly once: after an uncertain answer, Sent Items decides between "it went out" and
    "send it again" (once; a second uncertain answer is reported as it is)."""
    for attempt in (1, 2):
        try:
            client.post(f"{user}/sendMail", data=payload, headers={"Content-Type": "application/json"},
                        mailbox=message.sender, expected=(202,))
            return
        except GraphError as exc:
            if not (_uncertain(exc) and message.marker and message.save_to_sent_items):
                raise
            if in_sent_items(client, user, message):
                log.info("mail %s: the answer to sendMail was lost, but it is in Sent Items: sent", message.marker)
                return
            if attempt == 2:
                raise
            log.info("mail %s: the connection dropped and it is not in Sent Items: sending again", message.marker)


def _send_with_draft(client: GraphClient, user: str, message: Outgoing, small: list[MailAttachment],
                     large: list[MailAttachment]) -> None:
    try:
        message_id = _create_draft(client, user, message)
    except PermissionMissingError as exc:
        files = ", ".join(f"{a.name} ({_mb(len(a.data))})" for a in (large or small))
        raise PermissionMissingError(
            f"This email's attachments ({files}) are too large to send in one request, so they go through a "
            "draft and an upload session, which Microsoft requires the Mail.ReadWrite application permission for "
            "(besides Mail.Send): add Mail.ReadWrite in Entra > API permissions and grant admin consent."
            + (f" (request-id {exc.request_id})" if exc.request_id else ""),
            permission="Mail.ReadWrite", status=exc.status, code=exc.code, request_id=exc.request_id) from exc
    path = f"{user}/messages/{quote(message_id, safe='')}"
    try:
        for attachment in small:
            client.post(f"{path}/attachments", json=file_attachment(attachment), mailbox=message.sender,
                        expected=(201,))
        for attachment in large:
            _upload(client, path, message.sender, attachment)
        _send_draft(client, path, message)
    except GraphError:
        _discard_draft(client, path, message.sender)
        raise


def _create_draft(client: GraphClient, user: str, message: Outgoing) -> str:
    """The new draft's id. After an uncertain answer the marker finds the draft in Drafts if it was created (one
    more attempt if it was not), so a lost answer leaves no stray draft behind."""
    for attempt in (1, 2):
        try:
            draft = client.post(f"{user}/messages", json=graph_message(message, []), mailbox=message.sender,
                                expected=(201,))
            message_id = (draft or {}).get("id")
            if not message_id:
                raise MalformedResponseError("Microsoft Graph created the draft but returned no message id.",
                                             code="malformedDraft")
            return message_id
        except GraphError as exc:
            if not (_uncertain(exc) and message.marker):
                raise
            found = find_marked(client, user, message, "drafts")
            for extra in found[1:]:
                _discard_draft(client, f"{user}/messages/{quote(extra, safe='')}", message.sender)
            if found:
                log.info("mail %s: the answer to the draft's creation was lost; found it in Drafts",
                         message.marker)
                return found[0]
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _send_draft(client: GraphClient, path: str, message: Outgoing) -> None:
    """``send`` of the draft, exactly once: after an uncertain answer the draft itself says whether it went
    (a sent draft leaves Drafts: 404, or it is no longer ``isDraft``)."""
    for attempt in (1, 2):
        try:
            client.post(f"{path}/send", mailbox=message.sender, expected=(202,))
            return
        except GraphError as exc:
            if not _uncertain(exc):
                raise
            try:
                draft = client.get(path, params={"$select": "isDraft"}, mailbox=message.sender)
            except NotFoundError:
                return  # no longer a draft: it was sent
            if not draft.get("isDraft", True):
                return
            if attempt == 2:
                raise


def _upload(client: GraphClient, path: str, mailbox: str, attachment: MailAttachment) -> None:
    """Upload one large attachment through an upload session, in order, in ranges under 4 MB."""
    data, total = attachment.data, len(attachment.data)
    session = client.post(f"{path}/attachments/createUploadSession", mailbox=mailbox, expected=(200, 201), json={
        "AttachmentItem": {"attachmentType": "file", "name": attachment.name, "size": total,
                           "contentType": attachment.content_type}})
    url = (session or {}).get("uploadUrl")
    if not url:
        raise MalformedResponseError(f"Microsoft Graph opened no upload session for {attachment.name} "
                                     "(no uploadUrl in its answer).", code="malformedUploadSession")
    start = 0
    while start < total:
        end = min(start + CHUNK_SIZE, total) - 1
        response = client.send_unauthenticated("PUT", url, data=data[start:end + 1], headers={
            "Content-Type": "application/octet-stream", "Content-Range": f"bytes {start}-{end}/{total}"})
        if response.status_code == 201:
            return
        if response.status_code != 200:
            body = _json(response)
            code, text, request_id = parse_error(body)
            raise GraphError(
                f"Uploading {attachment.name} ({_mb(total)}) to Microsoft 365 failed at byte {start}: HTTP "
                f"{response.status_code}" + (f" {code}" if code else "") + (f": {text}" if text else "")
                + (f" (request-id {request_id})" if request_id else ""),
                status=response.status_code, code=code, request_id=request_id)
        start = _next_start(_json(response), end + 1)
    raise MalformedResponseError(f"Microsoft 365 took every byte of {attachment.name} but never confirmed the "
                                 "attachment (no 201 Created).", code="uploadNotConfirmed")


def _next_start(body: object, default: int) -> int:
    """Where the next range starts: the server's ``nextExpectedRanges`` (``["2097152"]`` or ``["0-"]``)."""
    ranges = body.get("nextExpectedRanges") if isinstance(body, dict) else None
    if isinstance(ranges, list) and ranges:
        try:
            return int(str(ranges[0]).split("-", 1)[0])
        except ValueError:
            pass
    return default


def _json(response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _discard_draft(client: GraphClient, path: str, mailbox: str) -> None:
    """Best effort: a draft left behind by a failed send would otherwise sit in the sender's Drafts."""
    try:
        client.delete(path, mailbox=mailbox)
    except GraphError as exc:
        log.info("could not delete the unsent draft %s: %s", path, exc)
