"""Blinker signals the host (or other extensions) can subscribe to. The sender is the Flask app."""
from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A key pair was generated: ``tenant``, ``sha256``.
key_pair_generated = _signals.signal("pbx365-key-pair-generated")
#: A key pair became active: ``tenant``, ``sha256``.
key_pair_activated = _signals.signal("pbx365-key-pair-activated")
#: The Configure tab's settings changed: ``tenant``.
settings_changed = _signals.signal("pbx365-settings-changed")
#: Admin consent came back from Microsoft: ``tenant``, ``granted`` (bool), ``error``.
admin_consent_received = _signals.signal("pbx365-admin-consent-received")
#: A sync run finished: ``tenant``, ``run_id``, ``kind``, ``status``.
sync_finished = _signals.signal("pbx365-sync-finished")
#: A message queued for Microsoft 365 mail was sent or failed for good: ``result`` (a ``MailResult``).
mail_finished = _signals.signal("pbx365-mail-finished")
