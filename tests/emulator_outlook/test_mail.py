"""sendMail (JSON and MIME), drafts, a 4 MB attachment through an upload session, send, the outbox."""
from __future__ import annotations

import base64
import hashlib
import os

import pytest
import requests

from .conftest import Tenant, make_tenant


@pytest.fixture
def outbox(tenant: Tenant):
    tenant.admin("DELETE", "/outbox")
    return lambda: tenant.admin("GET", "/outbox").json()


def _message(**extra):
    return {"subject": "Voicemail from 1002", "body": {"contentType": "Text", "content": "You have a voicemail."},
            "toRecipients": [{"emailAddress": {"address": "bob@partner.example", "name": "Bob"}}], **extra}


def test_send_mail_with_small_attachment_lands_in_outbox(tenant: Tenant, outbox):
    g = tenant.graph()
    wav = os.urandom(2048)
    r = g("POST", f"/users/{tenant.users['amy']}/sendMail", json={"saveToSentItems": False, "message": _message(
        ccRecipients=[{"emailAddress": {"address": "carol@partner.example"}}],
        attachments=[{"@odata.type": "#microsoft.graph.fileAttachment", "name": "vm.wav", "contentType": "audio/wav",
                      "contentBytes": base64.b64encode(wav).decode()}])})
    assert r.status_code == 202 and r.content == b""
    [mail] = outbox()
    assert mail["from"].startswith("amy@") and mail["to"] == ["bob@partner.example"]
    assert mail["subject"] == "Voicemail from 1002" and mail["bodyType"] == "text"
    assert mail["body"] == "You have a voicemail."
    assert mail["attachments"] == [{"name": "vm.wav", "contentType": "audio/wav", "size": 2048,
                                    "sha256": hashlib.sha256(wav).hexdigest()}]
    assert set(mail) >= {"id", "sentAt"}


def test_send_mail_by_upn_from_shared_mailbox(tenant: Tenant, outbox):
    g = tenant.graph()
    upn = g.get(f"/users/{tenant.users['reception']}").json()["userPrincipalName"]
    assert g("POST", f"/users/{upn}/sendMail", json={"message": _message()}).status_code == 202
    assert [m["from"] for m in outbox()] == [upn]


def test_mime_send_and_malformed_base64(tenant: Tenant, outbox):
    g = tenant.graph()
    mime = (b"To: Bob <bob@partner.example>\r\nSubject: MIME hello\r\nContent-Type: text/plain\r\n\r\nHi Bob\r\n")
    ok = g("POST", f"/users/{tenant.users['amy']}/sendMail", data=base64.b64encode(mime),
           headers={"Content-Type": "text/plain"})
    assert ok.status_code == 202
    bad = g("POST", f"/users/{tenant.users['amy']}/sendMail", data="this is *not* base64!",
            headers={"Content-Type": "text/plain"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "ErrorMimeContentInvalidBase64String"
    [mail] = outbox()
    assert (mail["subject"], mail["to"], mail["body"].strip()) == ("MIME hello", ["bob@partner.example"], "Hi Bob")


def test_send_mail_needs_mail_send_and_a_mailbox(tenant: Tenant, outbox):
    denied = tenant.graph(["Contacts.Read"])("POST", f"/users/{tenant.users['amy']}/sendMail",
                                             json={"message": _message()})
    assert denied.status_code == 403
    no_mailbox = tenant.graph()("POST", f"/users/{tenant.users['nomail']}/sendMail", json={"message": _message()})
    assert no_mailbox.status_code == 404
    unknown = tenant.graph()("POST", "/users/nobody@nowhere.example/sendMail", json={"message": _message()})
    assert unknown.status_code == 404
    assert outbox() == []


def test_draft_upload_session_and_send(tenant: Tenant, outbox):
    g = tenant.graph()
    amy = tenant.users["amy"]
    draft = g("POST", f"/users/{amy}/messages", json=_message(importance="Low"))
    assert draft.status_code == 201
    assert draft.json()["isDraft"] is True and draft.json()["importance"] == "low"
    mid = draft.json()["id"]
    small = g("POST", f"/users/{amy}/messages/{mid}/attachments", json={
        "@odata.type": "#microsoft.graph.fileAttachment", "name": "note.txt", "contentType": "text/plain",
        "contentBytes": base64.b64encode(b"hello").decode()})
    assert small.status_code == 201 and small.json()["size"] == 5

    data = os.urandom(4 * 1024 * 1024)
    session = g("POST", f"/users/{amy}/messages/{mid}/attachments/createUploadSession", json={
        "AttachmentItem": {"attachmentType": "file", "name": "voicemail.wav", "size": len(data),
                           "contentType": "audio/wav"}})
    assert session.status_code == 201
    assert session.json()["nextExpectedRanges"] == ["0-"]
    url = session.json()["uploadUrl"]
    assert url.startswith(tenant.base + "/") and "authtoken=" in url

    def put(start: int, end: int, **headers) -> requests.Response:
        return requests.put(url, data=data[start:end + 1], verify=tenant.ca, timeout=30, headers={
            "Content-Range": f"bytes {start}-{end}/{len(data)}", "Content-Type": "application/octet-stream",
            **headers})

    half = len(data) // 2
    assert put(0, half - 1, Authorization=g.session.headers["Authorization"]).status_code == 401
    assert put(half, len(data) - 1).status_code == 416                      # out of order
    first = put(0, half - 1)
    assert first.status_code == 200 and first.json()["nextExpectedRanges"] == [str(half)]
    last = put(half, len(data) - 1)
    assert last.status_code == 201 and last.content == b""
    assert "/Attachments('" in last.headers["Location"]

    assert g("POST", f"/users/{amy}/messages/{mid}/send").status_code == 202
    [mail] = outbox()
    assert [(a["name"], a["size"]) for a in mail["attachments"]] == [("note.txt", 5), ("voicemail.wav", len(data))]
    assert mail["attachments"][1]["sha256"] == hashlib.sha256(data).hexdigest()
    assert mail["attachments"][1]["contentType"] == "audio/wav"
    assert g("POST", f"/users/{amy}/messages/{mid}/send").status_code == 404     # no longer a draft


def test_upload_session_refuses_small_files_and_usgov(m365_emulator, keys, tenant: Tenant):
    g = tenant.graph()
    amy = tenant.users["amy"]
    mid = g("POST", f"/users/{amy}/messages", json=_message()).json()["id"]
    small = g("POST", f"/users/{amy}/messages/{mid}/attachments/createUploadSession",
              json={"AttachmentItem": {"attachmentType": "file", "name": "x.wav", "size": 1000}})
    assert small.status_code == 400
    gov = make_tenant(m365_emulator, keys, cloud="usgov")
    gg = gov.graph()
    gmid = gg("POST", f"/users/{gov.users['amy']}/messages", json=_message()).json()["id"]
    r = gg("POST", f"/users/{gov.users['amy']}/messages/{gmid}/attachments/createUploadSession",
           json={"AttachmentItem": {"attachmentType": "file", "name": "x.wav", "size": 5 * 1024 * 1024}})
    assert r.status_code == 501


def test_oversized_send_mail_is_refused(tenant: Tenant, outbox):
    big = base64.b64encode(os.urandom(3 * 1024 * 1024 + 500_000)).decode()
    r = tenant.graph()("POST", f"/users/{tenant.users['amy']}/sendMail", json={"message": _message(attachments=[
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": "big.bin", "contentBytes": big}])})
    assert r.status_code == 413
    assert outbox() == []
