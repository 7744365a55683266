"""Queueing mail for Microsoft 365: the outbox table, the after-commit enqueue, and how a message ended.

:func:`send_mail` stores the message (attachments included) in ``pbx365_mail_message`` in the caller's
transaction and enqueues the mail job once that transaction commits: a rolled-back transaction sends nothing, and
the job only gets the message id, so a worker restart loses nothing.
"""
from __future__ import annotations

import hashlib
import importlib
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import sqlalchemy as sa
from flask import current_app

from ..exceptions import ConfigurationError
from ..host import MailMessage
from ..jobs import get_queue
from ..models import MailOutboxAttachment, MailOutboxMessage
from ..settings import get_settings
from ..signals import mail_finished  # noqa: F401  (re-exported by flask_pbx365.mail)
from ..state import get_state

log = logging.getLogger("flask_pbx365.mail")


_PENDING = "pbx365_mail_pending"
_HOOKED = "pbx365_mail_hooked"


@dataclass(frozen=True)
class MailResult:
    """How a queued message ended: ``status`` is ``sent`` or ``failed`` (then ``error`` says why)."""

    message_id: str
    tenant: str
    reference: str | None
    status: str
    error: str | None = None


def _session():
    return get_state().db.session


def is_enabled(tenant: str) -> bool:
    """True when the tenant's Mail tab sends the PBX's email through Microsoft 365."""
    return bool(get_settings(tenant)["mail"]["enabled"])


def _callback_path(fn: Callable[[MailResult], object] | None) -> str | None:
    if fn is None:
        return None
    path = f"{fn.__module__}:{fn.__qualname__}"
    if "<" in fn.__qualname__ or resolve_callback(path) is not fn:
        raise ConfigurationError(f"on_result must be a top-level function importable as {path}, so a worker in "
                                 "another process can call it.")
    return path


def resolve_callback(path: str) -> Callable[[MailResult], object]:
    """The function named ``module:qualname``."""
    module, _, name = path.partition(":")
    target: object = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target  # type: ignore[return-value]


def queue_message(tenant: str, message: MailMessage, *, sender: str | None, save_to_sent_items: bool = True,
                  on_result: Callable[[MailResult], object] | None = None,
                  reference: str | None = None) -> MailOutboxMessage:
    """Store ``message`` for sending as ``sender`` and enqueue its job when the session commits."""
    row = MailOutboxMessage(tenant=tenant, sender=sender or "", recipients=list(message.to),
                            subject=message.subject, body=message.body, body_type=message.body_type,
                            save_to_sent_items=save_to_sent_items, status="queued", attempts=0,
                            on_result=_callback_path(on_result), reference=reference)
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
    session = _session()()  # the Session behind the scoped session: the events are per Session object
    session.info.setdefault(_PENDING, []).append((tenant, message_id))
    if not session.info.get(_HOOKED):
        session.info[_HOOKED] = True
        sa.event.listen(session, "after_commit", _after_commit)
        sa.event.listen(session, "after_rollback", _after_rollback)


def _after_commit(session) -> None:
    pending, session.info[_PENDING] = session.info.get(_PENDING) or [], []
    for tenant, message_id in pending:
        try:
            enqueue(tenant, message_id)
        except Exception:  # the commit happened; the message stays queued and the tab offers to send it again
            log.exception("could not enqueue mail %s of tenant %s", message_id, tenant)


def _after_rollback(session) -> None:
    session.info[_PENDING] = []


def enqueue(tenant: str, message_id: str) -> None:
    """Enqueue the mail job of a stored message."""
    from .jobs import deliver_message

    cfg = current_app.config
    get_queue().enqueue(deliver_message, tenant, message_id, job_timeout=int(cfg["PBX365_JOB_TIMEOUT"]),
                        result_ttl=int(cfg["PBX365_JOB_RESULT_TTL"]),
                        description=f"pbx365 mail {message_id} of {tenant}")


def retry_message(tenant: str, message_id: str) -> MailOutboxMessage:
    """Queue a failed (or stuck) message again; enqueued when the session commits."""
    row = get_message(tenant, message_id)
    if row is None:
        raise ConfigurationError(f"Tenant {tenant!r} has no queued email {message_id}.")
    if row.status == "sent":
        raise ConfigurationError("This email was sent already.")
    row.status, row.error, row.finished_at = "queued", None, None
    _enqueue_after_commit(tenant, row.id)
    return row


def get_message(tenant: str, message_id: str) -> MailOutboxMessage | None:
    row = _session().get(MailOutboxMessage, message_id)
    return row if row is not None and row.tenant == tenant else None


def list_messages(tenant: str, limit: int = 20) -> list[MailOutboxMessage]:
    """The tenant's latest messages through Microsoft 365, newest first."""
    return list(_session().scalars(sa.select(MailOutboxMessage).where(MailOutboxMessage.tenant == tenant)
                                   .order_by(MailOutboxMessage.created_at.desc()).limit(limit)))


def attachments_of(message_id: str) -> list[MailOutboxAttachment]:
    return list(_session().scalars(sa.select(MailOutboxAttachment).where(
        MailOutboxAttachment.message_id == message_id).order_by(MailOutboxAttachment.position)))


def message_json(row: MailOutboxMessage) -> dict:
    """A message as the tab and scripts see it (no bodies or attachment bytes)."""
    return {"id": row.id, "to": list(row.recipients or []), "subject": row.subject, "sender": row.sender,
            "status": row.status, "error": row.error, "attempts": row.attempts,
            "attachments": [{"name": a.name, "content_type": a.content_type, "size": a.size, "sha256": a.sha256}
                            for a in attachments_of(row.id)],
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "finished_at": row.finished_at.isoformat() if row.finished_at else None}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
