"""Email from the PBX (voicemail, missed calls, the extension's admin notices), with a record of each message.

Every message becomes a :class:`~demo_app.models.Notification` row (``GET /api/tenants/{t}/notifications``).
The demo's own transport is SMTP when ``DEMO_SMTP_HOST`` is set, else the log.
"""
from __future__ import annotations

import hashlib
import smtplib
from email.message import EmailMessage

from flask import current_app

from flask_pbx365.host import MailMessage

from .models import Notification, Tenant, db


def deliver(tenant: Tenant, message: MailMessage) -> Notification:
    """Send a PBX email for ``tenant`` and record it.

    SEAM (Microsoft 365 mail): once the extension offers sending a tenant's mail through Graph, route here — when
    the tenant's Mail tab is enabled, hand ``message`` to the extension and record transport ``"microsoft365"``.
    Until then every message goes through :func:`deliver_local`.
    """
    return deliver_local(tenant, message)


def deliver_local(tenant: Tenant | None, message: MailMessage) -> Notification:
    """Send through the demo's own transport (SMTP or log), never through Microsoft 365, and record it."""
    host = current_app.config.get("DEMO_SMTP_HOST")
    note = Notification(
        tenant_id=tenant.id if tenant else None, recipients=list(message.to), subject=message.subject, body=message.body,
        body_type=message.body_type, transport="smtp" if host else "log", status="queued",
        attachments=[{"name": a.name, "content_type": a.content_type, "size": len(a.data),
                      "sha256": hashlib.sha256(a.data).hexdigest()} for a in message.attachments])
    db.session.add(note)
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
