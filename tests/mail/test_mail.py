"""Mail through Microsoft 365, seen from outside: the demo API's notifications, the emulator's outbox and request
log, and the admin's Mail tab."""
from __future__ import annotations

from datetime import timedelta

from tests.conftest import csrf_from
from tests.mail.conftest import wav_sha256

SMALL = 2_500_000      # under 3 MB: inside the sendMail request
LARGE = 7_500_000      # over 3 MB: draft + upload session (two ranges of at most 4 MB) + send


def voicemail(env, size: int) -> dict:
    return env.api("POST", "/voicemail", json={"extension": "101", "caller": "+15551234567", "wav_bytes": size})


def test_small_voicemail_is_sent_with_sendmail_as_the_sender(mail_env):
    mail_env.enable(save_to_sent_items=False)
    vm = voicemail(mail_env, SMALL)
    assert (vm["notification"]["transport"], vm["notification"]["status"]) == ("microsoft365", "queued")
    assert mail_env.outbox() == []

    mail_env.work()

    [note] = mail_env.notifications()
    assert (note["to"], note["transport"], note["status"], note["error"]) == (
        ["alice@acme.example"], "microsoft365", "sent", None)
    [sent] = mail_env.outbox()
    assert (sent["from"], sent["to"], sent["subject"]) == (
        mail_env.sender, ["alice@acme.example"], "New voicemail from +15551234567")
    assert sent["savedToSentItems"] is False
    assert sent["attachments"] == [{"name": f"voicemail-{vm['id']}.wav", "contentType": "audio/wav",
                                    "size": SMALL, "sha256": wav_sha256(SMALL)}]
    calls = mail_env.graph_calls()
    assert ("POST", f"/v1.0/users/{mail_env.sender}/sendMail", 202) in calls
    assert not any("/messages" in path for _, path, _ in calls)


def test_large_voicemail_goes_through_a_draft_and_an_upload_session(mail_env):
    mail_env.enable()
    vm = voicemail(mail_env, LARGE)
    mail_env.work()

    [note] = mail_env.notifications()
    assert (note["transport"], note["status"]) == ("microsoft365", "sent"), note["error"]
    [sent] = mail_env.outbox()
    assert sent["from"] == mail_env.sender and sent["to"] == ["alice@acme.example"]
    assert sent["attachments"] == [{"name": f"voicemail-{vm['id']}.wav", "contentType": "audio/wav",
                                    "size": LARGE, "sha256": wav_sha256(LARGE)}]
    calls = mail_env.graph_calls()
    assert not any(path.endswith("/sendMail") for _, path, _ in calls)
    uploads = [status for method, path, status in calls if method == "PUT" and "AttachmentSessions" in path]
    assert uploads == [200, 201]
    assert any(path.endswith("/attachments/createUploadSession") and status == 201 for _, path, status in calls)
    assert any(path.endswith("/send") and status == 202 for _, path, status in calls)


def test_large_attachment_without_mail_readwrite_fails_with_the_permission_to_add(send_only_env):
    env = send_only_env
    env.enable()
    voicemail(env, LARGE)
    env.work()

    [note] = env.notifications()
    assert (note["transport"], note["status"]) == ("microsoft365", "failed")
    assert "Mail.ReadWrite" in note["error"] and "grant admin consent" in note["error"]
    assert env.outbox() == []


def test_small_attachment_needs_only_mail_send(send_only_env):
    send_only_env.enable()
    voicemail(send_only_env, SMALL)
    send_only_env.work()
    assert [n["status"] for n in send_only_env.notifications()] == ["sent"]
    assert len(send_only_env.outbox()) == 1


def test_mail_disabled_keeps_the_pbx_transport(mail_env):
    vm = voicemail(mail_env, SMALL)
    assert (vm["notification"]["transport"], vm["notification"]["status"]) == ("log", "sent")
    mail_env.work()
    assert mail_env.outbox() == []
    assert not any("sendMail" in path for _, path, _ in mail_env.graph_calls())


def test_throttled_send_is_retried_and_sent_once(mail_env):
    mail_env.enable()
    mail_env.emulator.add_fault(method="POST", path=r"/sendMail$", times=2, status=429, retryAfter="0")
    mail_env.api("POST", "/missed-call", json={"extension": "101", "caller": "42"})
    mail_env.work()

    assert [n["status"] for n in mail_env.notifications()] == ["sent"]
    assert [m["subject"] for m in mail_env.outbox()] == ["Missed call from 42"]
    statuses = [s for m, p, s in mail_env.graph_calls() if p.endswith("/sendMail")]
    assert statuses == [429, 429, 202]


def test_a_lost_answer_is_reconciled_with_sent_items_and_the_mail_counts_as_sent_once(mail_env):
    mail_env.enable()
    # Microsoft takes the message and sends it; the connection drops before the answer arrives.
    mail_env.emulator.add_fault(method="POST", path=r"/sendMail$", times=1, reset="after")
    mail_env.api("POST", "/missed-call", json={"extension": "101", "caller": "42"})
    mail_env.work()

    assert [n["status"] for n in mail_env.notifications()] == ["sent"]
    assert [m["subject"] for m in mail_env.outbox()] == ["Missed call from 42"], "sent exactly once"
    calls = [(m, p.rsplit("/", 2)[-1]) for m, p, s in mail_env.graph_calls() if "/users/" in p]
    assert calls == [("POST", "sendMail"), ("GET", "messages")], calls  # one send, one look in Sent Items


def test_a_send_that_never_arrived_is_sent_again_once(mail_env):
    mail_env.enable()
    # The connection drops before Microsoft processes the request: Sent Items proves it did not go out.
    mail_env.emulator.add_fault(method="POST", path=r"/sendMail$", times=1, reset="before")
    mail_env.api("POST", "/missed-call", json={"extension": "101", "caller": "42"})
    mail_env.work()

    assert [n["status"] for n in mail_env.notifications()] == ["sent"]
    assert [m["subject"] for m in mail_env.outbox()] == ["Missed call from 42"]


def test_without_a_way_to_check_sent_items_the_status_says_it_may_have_gone(send_only_env):
    send_only_env.enable()
    send_only_env.emulator.add_fault(method="POST", path=r"/sendMail$", times=1, reset="after")
    send_only_env.api("POST", "/missed-call", json={"extension": "101", "caller": "42"})
    send_only_env.work()

    [note] = send_only_env.notifications()
    assert note["status"] == "failed" and "may have been sent" in note["error"]
    assert "Mail.ReadWrite" in note["error"]
    assert len(send_only_env.outbox()) == 1, "never sent twice on a guess"


def test_permanent_failure_is_recorded_with_the_reason(mail_env):
    mail_env.enable()
    mail_env.emulator.add_fault(method="POST", path=r"/sendMail$", times=1, status=400,
                                body={"error": {"code": "ErrorInvalidRecipients",
                                                "message": "At least one recipient isn't valid."}})
    mail_env.api("POST", "/missed-call", json={"extension": "101", "caller": "42"})
    mail_env.work()

    [note] = mail_env.notifications()
    assert note["status"] == "failed"
    assert "ErrorInvalidRecipients" in note["error"] and "recipient" in note["error"]
    assert mail_env.outbox() == []


def test_sender_without_mailbox_is_an_actionable_failure(mail_env):
    from flask_pbx365.settings import import_settings

    with mail_env.app.app_context():
        import_settings("acme", {"mail": {"enabled": True, "sender": "nobody@elsewhere.example"}})
    mail_env.api("POST", "/missed-call", json={"extension": "101", "caller": "42"})
    mail_env.work()
    [note] = mail_env.notifications()
    assert note["status"] == "failed"
    assert "nobody@elsewhere.example" in note["error"] and "Mail tab" in note["error"]


def test_nothing_is_sent_when_the_callers_transaction_rolls_back(mail_env):
    from demo_app.models import db
    from flask_pbx365.host import MailMessage
    from flask_pbx365.mail import list_messages, send_mail

    mail_env.enable()
    with mail_env.app.app_context():
        assert send_mail("acme", MailMessage(to=["x@acme.example"], subject="rolled back", body="-"))
        db.session.rollback()
        assert send_mail("acme", MailMessage(to=["x@acme.example"], subject="committed", body="-"))
        db.session.commit()
        assert [m.subject for m in list_messages("acme")] == ["committed"]
    mail_env.work()
    assert [m["subject"] for m in mail_env.outbox()] == ["committed"]


def test_certificate_expiry_notice_goes_through_microsoft_365(mail_env):
    from flask_pbx365.keys import active_key_pair
    from flask_pbx365.scheduler import send_expiry_notices

    mail_env.enable()
    with mail_env.app.app_context():
        not_after = active_key_pair("acme").not_after
        assert send_expiry_notices(mail_env.app, now=not_after - timedelta(days=5))
    mail_env.work()

    [note] = mail_env.notifications()
    assert (note["to"], note["transport"], note["status"]) == (["admin@acme.example"], "microsoft365", "sent")
    [sent] = mail_env.outbox()
    assert sent["from"] == mail_env.sender and "certificate expires" in sent["subject"]


def test_mail_tab_saves_settings_and_sends_a_test_email(mail_env, admin_client):
    page = admin_client.get("/admin/integrations/microsoft365/mail")
    assert page.status_code == 200 and "Send test email" in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True), "/mail")

    refused = admin_client.post("/admin/integrations/microsoft365/mail",
                                data={"csrf_token": token, "enabled": "on", "sender": ""})
    assert refused.status_code == 400 and "sender address" in refused.get_data(as_text=True)

    saved = admin_client.post("/admin/integrations/microsoft365/mail", data={
        "csrf_token": token, "enabled": "on", "sender": mail_env.sender}, follow_redirects=True)
    assert saved.status_code == 200 and "Saved." in saved.get_data(as_text=True)
    export = mail_env.app.test_cli_runner().invoke(args=["pbx365", "settings", "export", "acme"])
    assert '"sender": "%s"' % mail_env.sender in export.output

    queued = admin_client.post("/admin/integrations/microsoft365/mail/test", data={
        "csrf_token": token, "to": "ops@acme.example"}, follow_redirects=True)
    assert "queued" in queued.get_data(as_text=True)
    mail_env.work()

    [sent] = mail_env.outbox()
    assert (sent["from"], sent["to"], sent["savedToSentItems"]) == (mail_env.sender, ["ops@acme.example"], False)
    html = admin_client.get("/admin/integrations/microsoft365/mail").get_data(as_text=True)
    assert 'data-status="sent"' in html and "ops@acme.example" in html


def test_mail_tab_shows_a_failure_and_retries_it(send_only_env, admin_client):
    import re

    env = send_only_env
    env.enable()
    voicemail(env, LARGE)
    env.work()
    html = admin_client.get("/admin/integrations/microsoft365/mail").get_data(as_text=True)
    assert 'data-status="failed"' in html and "Mail.ReadWrite" in html

    env.emulator.patch_application(env.tid, _app_id(env),
                                   permissions=["User.Read.All", "Mail.Send", "Mail.ReadWrite"])
    action = re.search(r'action="([^"]+/retry)"', html).group(1)
    admin_client.post(action, data={"csrf_token": csrf_from(html, "/retry")})
    _forget_tokens(env)
    env.work()
    assert [n["status"] for n in env.notifications()] == ["sent"]
    assert len(env.outbox()) == 1


def _app_id(env) -> str:
    from flask_pbx365.tenants import find_config

    with env.app.app_context():
        return find_config("acme").client_id


def _forget_tokens(env) -> None:
    """A new consent shows in new tokens only (as with Entra); drop the cached one."""
    from flask_pbx365.connection import credentials_for
    from flask_pbx365.graph.tokens import forget

    with env.app.app_context():
        forget(credentials_for("acme"))
