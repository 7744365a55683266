"""Queueing mail for Microsoft 365: the outbox table, the after-commit enqueue, and how a message ended.

:func:`send_mail` stores the message (attachments included) in ``pbx365_mail_message`` in the caller's
transaction and enqueues the mail job once that transaction commits: a rolled-back transaction sends nothing, and
the job only gets the message id, so a worker restart loses nothing.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Callable

from flask import current_app

from ..exceptions import ConfigurationError
from ..host import MailMessage
from ..models import MailOutboxAttachment, MailOutboxMessage
from ..runs.queue import after_commit, get_queue
from ..settings import get_settings
from ..state import get_state
from .delivery import deliver_message
from .store import MailResult, callback_path, get_message, job_id, utcnow

log = logging.getLogger("flask_pbx365.mail")


def _session():
    return get_state().db.session


def is_enabled(tenant: str) -> bool:
    """True when the tenant's Mail tab sends the PBX's email through Microsoft 365."""
    return bool(get_settings(tenant)["mail"]["enabled"])


def queue_message(tenant: str, message: MailMessage, *, sender: str | None, save_to_sent_items: bool = True,
                  on_result: Callable[[MailResult], object] | None = None,
                  reference: str | None = None) -> MailOutboxMessage:
    """Store ``message`` for sending as ``sender`` and enqueue its job when the session commits."""
    row = MailOutboxMessage(tenant=tenant, sender=sender or "", recipients=list(message.to),
                            subject=message.subject, body=message.body, body_type=message.body_type,
                            save_to_sent_items=save_to_sent_items, status="queued", attempts=0,
                            on_result=callback_path(on_result), reference=reference)
    session = _session()
    session.add(row)
    session.flush()
    for position, attachment in enumerate(message.attachments):
        session.add(MailOutboxAttachment(
            message_id=row.id, position=position, name=attachment.name, content_type=attachment.content_type,
            size=len(attachment.data), sha256=hashlib.sha256(attachment.data).hexdigest(), data=attachment.data))
    session.flush()
    _enqueue_after_commit(tenant, row.id)
    return row


def send_mail(tenant: str, message: MailMessage, *, on_result: Callable[[MailResult], object] | None = None,
              reference: str | None = None) -> bool:
    """Send ``message`` through Microsoft 365 as the Mail tab's sender, when the tab enables it for ``tenant``.

    Returns False when it is not enabled (the host then uses its own transport). Otherwise the message is queued
    in the caller's transaction and sent by the mail job once that transaction commits; the host learns the
    outcome from ``on_result`` (a top-level function called with a :class:`MailResult` in the worker, whose
    database changes are committed with the extension's), from the :data:`mail_finished` signal, and on the tab.
    ``reference`` is the host's own id for the message, handed back in the result.
    """
    options = get_settings(tenant)["mail"]
    if not options["enabled"]:
        return False
    queue_message(tenant, message, sender=options["sender"], save_to_sent_items=options["save_to_sent_items"],
                  on_result=on_result, reference=reference)
    return True


def _enqueue_after_commit(tenant: str, message_id: str) -> None:
    # If the enqueue fails the message stays queued and the tab offers to send it again.
    after_commit(lambda: enqueue(tenant, message_id), f"enqueueing mail {message_id} of tenant {tenant}")


def enqueue(tenant: str, message_id: str) -> None:
    """Enqueue the mail job of a stored message."""
    cfg = current_app.config
    get_queue().enqueue(deliver_message, tenant, message_id, job_id=job_id(message_id),
                        job_timeout=int(cfg["PBX365_MAIL_JOB_TIMEOUT"]), result_ttl=int(cfg["PBX365_JOB_RESULT_TTL"]),
                        description=f"pbx365 mail {message_id} of {tenant}")


def retry_message(tenant: str, message_id: str) -> MailOutboxMessage:
    """Queue a failed (or stuck ``queued``) message again; enqueued when the session commits. A message being
    sent is refused: if its worker died, the scheduler's recovery takes it over after checking Sent Items."""
    row = get_message(tenant, message_id)
    if row is None:
        raise ConfigurationError(f"Tenant {tenant!r} has no queued email {message_id}.")
    if row.status == "sent":
        raise ConfigurationError("This email was sent already.")
    if row.status == "sending":
        raise ConfigurationError("This email is being sent. If the worker sending it stopped, the scheduler takes "
                                 "it over by itself (after looking for it in Sent Items), so it is never sent twice.")
    row.status, row.error, row.finished_at, row.status_at = "queued", None, None, utcnow()
    _enqueue_after_commit(tenant, row.id)
    return row


