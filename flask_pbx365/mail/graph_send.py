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
from dataclasses import dataclass, field
from urllib.parse import quote

from ..exceptions import (
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
    return body


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
    user = f"/users/{quote(message.sender, safe='@')}"
    small = [a for a in message.attachments if len(a.data) < INLINE_MAX]
    large = [a for a in message.attachments if len(a.data) >= INLINE_MAX]
    if not large:
        payload = json.dumps({"message": graph_message(message, small),
                              "saveToSentItems": message.save_to_sent_items}).encode()
        if len(payload) <= REQUEST_MAX:
            client.post(f"{user}/sendMail", data=payload, headers={"Content-Type": "application/json"},
                        mailbox=message.sender, expected=(202,))
            return "sendMail"
    _send_with_draft(client, user, message, small, large)
    return "draft"


def _send_with_draft(client: GraphClient, user: str, message: Outgoing, small: list[MailAttachment],
                     large: list[MailAttachment]) -> None:
    try:
        draft = client.post(f"{user}/messages", json=graph_message(message, []), mailbox=message.sender,
                            expected=(201,))
    except PermissionMissingError as exc:
        files = ", ".join(f"{a.name} ({_mb(len(a.data))})" for a in (large or small))
        raise PermissionMissingError(
            f"This email's attachments ({files}) are too large to send in one request, so they go through a "
            "draft and an upload session, which Microsoft requires the Mail.ReadWrite application permission for "
            "(besides Mail.Send): add Mail.ReadWrite in Entra > API permissions and grant admin consent."
            + (f" (request-id {exc.request_id})" if exc.request_id else ""),
            permission="Mail.ReadWrite", status=exc.status, code=exc.code, request_id=exc.request_id) from exc
    message_id = (draft or {}).get("id")
    if not message_id:
        raise MalformedResponseError("Microsoft Graph created the draft but returned no message id.",
                                     code="malformedDraft")
    path = f"{user}/messages/{quote(message_id, safe='')}"
    try:
        for attachment in small:
            client.post(f"{path}/attachments", json=file_attachment(attachment), mailbox=message.sender,
                        expected=(201,))
        for attachment in large:
            _upload(client, path, message.sender, attachment)
        client.post(f"{path}/send", mailbox=message.sender, expected=(202,))
    except GraphError:
        _discard_draft(client, path, message.sender)
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
