"""The declaration of mail through Microsoft 365 (no runs: each message is its own RQ job; the scheduler recovers
messages whose job was lost)."""
from __future__ import annotations

from ..feature import Feature
from ..settings import boolean, optional_email
from .recovery import recover_messages
from .tab import TAB

FEATURE = Feature(
    name="mail",
    label="Mail",
    # Mail.ReadWrite: Microsoft requires it for drafts and attachment upload sessions (attachments of 3 MB or more).
    permissions={"mail": (("Mail.Send",),)},
    optional=("mail",),
    settings={"mail": {
        "enabled": (False, boolean),
        "sender": (None, optional_email),
        "save_to_sent_items": (True, boolean),
    }},
    tab=TAB,
    scheduler_pass=recover_messages,
)
