"""Email from the PBX (voicemail, missed calls, the extension's admin notices), with a record of each message.

Every message becomes a :class:`~demo_app.models.Notification` row (``GET /api/tenants/{t}/notifications``).
When the tenant's Mail tab (flask_pbx365) is enabled, messages go through Microsoft 365: the row says transport
``microsoft365`` and goes from ``queued`` to ``sent`` or ``failed`` when the extension's mail job has sent it.
Otherwise the demo's own transport sends it: SMTP when ``DEMO_SMTP_HOST`` is set, else the log.
"""
from __future__ import annotations

import hashlib
import smtplib
from email.message import EmailMessage

from flask import current_app

from flask_pbx365.host import MailMessage

from .models import Notification, Tenant, db


def deliver(tenant: Tenant | None, message: MailMessage) -> Notification:
    """Send a PBX email for ``tenant`` and record it: through Microsoft 365 when the tenant's Mail tab is enabled
    (queued now, sent by the extension's worker once the caller commits), else through the demo's own transport (SMTP or log)."""
    from flask_pbx365.mail import send_mail

    note = _record(tenant, message, "microsoft365")
    if tenant is not None and send_mail(tenant.slug, message, on_result=record_mail_result,
                                        reference=str(note.id)):
        return note
    return _send_own(note, message)


def record_mail_result(result) -> None:
    """flask_pbx365's callback (in its worker) when a message it queued was sent or failed for good."""
    note = db.session.get(Notification, int(result.reference)) if result.reference else None
    if note is not None:
        note.status, note.error = result.status, result.error
        db.session.flush()


def _record(tenant: Tenant | None, message: MailMessage, transport: str) -> Notification:
    note = Notification(
        tenant_id=tenant.id if tenant else None, recipients=list(message.to), subject=message.subject, body=message.body,
        body_type=message.body_type, transport=transport, status="queued",
        attachments=[{"name": a.name, "content_type": a.content_type, "size": len(a.data),
                      "sha256": hashlib.sha256(a.data).hexdigest()} for a in message.attachments])
    db.session.add(note)
    db.session.flush()
    return note


def _send_own(note: Notification, message: MailMessage) -> Notification:
    host = current_app.config.get("DEMO_SMTP_HOST")
    note.transport = "smtp" if host else "log"
    try:
        if host:
            _send_smtp(host, message)
        else:
            current_app.logger.info("mail to %s: %s (%d attachment(s))", ", ".join(message.to), message.subject,
                                    len(message.attachments))
        note.status = "sent"
    except (OSError, smtplib.SMTPException) as exc:
        note.status, note.error = "failed", f"SMTP server {host} refused the message: {exc}"
        current_app.logger.warning("mail to %s failed: %s", message.to, exc)
    db.session.flush()
    return note


def _send_smtp(host: str, message: MailMessage) -> None:
    config = current_app.config
    mail = EmailMessage()
    mail["From"] = config.get("DEMO_MAIL_FROM", "pbx@localhost")
    mail["To"] = ", ".join(message.to)
    mail["Subject"] = message.subject
    mail.set_content(message.body, subtype="html" if message.body_type == "html" else "plain")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        mail.add_attachment(attachment.data, maintype=maintype, subtype=subtype or "octet-stream",
                            filename=attachment.name)
    with smtplib.SMTP(host, int(config.get("DEMO_SMTP_PORT", 25)), timeout=30) as smtp:
        smtp.send_message(mail)
