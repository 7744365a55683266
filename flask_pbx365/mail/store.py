"""The outbox's rows: how a queued message ended, reading messages and attachments, the host's callback."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import sqlalchemy as sa
from flask import current_app

from ..exceptions import ConfigurationError
from ..models import MailOutboxAttachment, MailOutboxMessage
from ..state import get_state


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


def callback_path(fn: Callable[[MailResult], object] | None) -> str | None:
    """``module:qualname`` of a top-level function, refused for anything a worker could not import."""
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


def job_id(message_id: str) -> str:
    """The RQ job id of a message's mail job: one per message, so the scheduler can tell a lost job."""
    return f"pbx365-mail-{message_id}"


def abandoned_before(now: datetime) -> datetime:
    """A message still ``sending`` since before this was left by a dead worker: its job would have been stopped
    at ``PBX365_MAIL_JOB_TIMEOUT``, and ``PBX365_MAIL_RECOVER_SECONDS`` more have passed."""
    cfg = current_app.config
    return now - timedelta(seconds=int(cfg["PBX365_MAIL_JOB_TIMEOUT"]) + int(cfg["PBX365_MAIL_RECOVER_SECONDS"]))
