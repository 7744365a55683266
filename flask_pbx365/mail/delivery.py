"""Delivering one stored message: the top-level RQ job that sends it through Graph and records how it ended."""
from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app

from ..connection import client_options, credentials_for
from ..exceptions import ConfigurationError, PBX365Error
from ..graph import GraphClient
from ..host import MailAttachment
from ..models import MailOutboxAttachment, MailOutboxMessage
from ..signals import mail_finished
from ..state import get_state
from .graph_send import Outgoing, send_message, went_out_before
from .store import MailResult, abandoned_before, attachments_of, resolve_callback, utcnow

log = logging.getLogger("flask_pbx365.mail")


def deliver_message(tenant: str, message_id: str) -> str | None:
    """RQ job: send the stored message ``message_id`` of ``tenant``; returns its final status.

    Only a ``queued`` message is sent (a job run twice sends once), or one whose earlier job died while sending it
    (``sending`` past :func:`~.store.abandoned_before`): that one is first looked for in Sent Items, and counts as
    sent if it is there. Throttling (429/503) is retried by the Graph client; anything that still fails marks the
    message ``failed`` with an admin-readable reason.
    """
    session = get_state().db.session
    row = session.get(MailOutboxMessage, message_id)
    if row is None or row.tenant != tenant:
        log.warning("mail %s of tenant %s does not exist; nothing to send", message_id, tenant)
        return None
    now = utcnow()
    claim = sa.update(MailOutboxMessage).where(MailOutboxMessage.id == message_id).values(
        status="sending", status_at=now, attempts=MailOutboxMessage.attempts + 1)
    resumed = False
    claimed = session.execute(claim.where(MailOutboxMessage.status == "queued")).rowcount
    if not claimed:
        claimed = resumed = bool(session.execute(claim.where(
            MailOutboxMessage.status == "sending", MailOutboxMessage.status_at < abandoned_before(now))).rowcount)
    session.commit()
    if not claimed:
        session.refresh(row)
        return row.status
    try:
        _send(row, resumed)
        status, error = "sent", None
    except PBX365Error as exc:
        status, error = "failed", str(exc)
        log.warning("mail %s of tenant %s failed: %s", message_id, tenant, error)
    except Exception as exc:  # a bug must still end the message visibly, not leave it "sending"
        log.exception("mail %s of tenant %s crashed", message_id, tenant)
        status, error = "failed", f"Internal error ({type(exc).__name__}: {exc}); see the worker's log."
    session.rollback()
    row = session.get(MailOutboxMessage, message_id)
    row.status, row.error = status, error
    row.finished_at = row.status_at = utcnow()
    if status == "sent":  # keep name, size and hash; the bytes are no longer needed
        session.execute(sa.update(MailOutboxAttachment).where(MailOutboxAttachment.message_id == message_id)
                        .values(data=None))
    session.commit()
    _tell_host(row)
    return status


def _send(row: MailOutboxMessage, resumed: bool) -> None:
    if not row.sender:
        raise ConfigurationError("Mail through Microsoft 365 is enabled but has no sender address: enter the "
                                 "mailbox to send as on the Mail tab.")
    attachments = [MailAttachment(a.name, a.content_type, a.data or b"") for a in attachments_of(row.id)]
    message = Outgoing(sender=row.sender, to=list(row.recipients or []), subject=row.subject, body=row.body,
                       body_type=row.body_type, save_to_sent_items=row.save_to_sent_items, attachments=attachments,
                       marker=row.id, reconcile_seconds=float(current_app.config["PBX365_MAIL_RECONCILE_SECONDS"]))
    with GraphClient(credentials_for(row.tenant), **client_options()) as client:
        if resumed and went_out_before(client, message):
            log.info("mail %s: its earlier job died while sending it, and it is in Sent Items: sent", row.id)
            return
        send_message(client, message)


def _tell_host(row: MailOutboxMessage) -> None:
    result = MailResult(message_id=row.id, tenant=row.tenant, reference=row.reference, status=row.status,
                        error=row.error)
    session = get_state().db.session
    if row.on_result:
        try:
            resolve_callback(row.on_result)(result)
            session.commit()
        except Exception:  # the message's own outcome is recorded; the host's bookkeeping failed
            session.rollback()
            log.exception("the host's mail callback %s failed for mail %s", row.on_result, row.id)
    mail_finished.send(current_app._get_current_object(), result=result)
