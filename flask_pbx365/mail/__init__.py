"""Mail through Microsoft 365: the PBX's notification emails sent with Graph ``sendMail`` as a chosen mailbox.

The host calls :func:`send_mail` for each email; it answers False when the tenant's Mail tab is off (the host
then uses its own transport). Otherwise the message is stored and an RQ job (:func:`deliver_message`) sends it:
attachments under 3 MB inside the ``sendMail`` request, larger ones through a draft and an upload session.
"""
from __future__ import annotations

from ..host import MailAttachment, MailMessage
from ..signals import mail_finished
from .delivery import deliver_message
from .outbox import is_enabled, queue_message, retry_message, send_mail
from .store import MailResult, get_message, list_messages, message_json

__all__ = ["MailAttachment", "MailMessage", "MailResult", "deliver_message", "get_message", "is_enabled",
           "list_messages", "mail_finished", "message_json", "queue_message", "retry_message", "send_mail"]
