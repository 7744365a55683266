"""Voicemail and missed-call emails: the PBX events that mail a user."""
from __future__ import annotations

import struct

from flask_pbx365.host import MailAttachment, MailMessage

from .models import Notification, User, Voicemail, db
from .notifications import deliver

WAV_HEADER_SIZE = 44
MAX_WAV_BYTES = 64 * 1024 * 1024
SAMPLE_RATE = 8000


def silent_wav(size: int) -> bytes:
    """A valid RIFF/WAVE file of exactly ``size`` bytes: 8 kHz mono 8-bit PCM silence."""
    if size < WAV_HEADER_SIZE:
        raise ValueError(f"a WAV file has at least {WAV_HEADER_SIZE} bytes")
    data_size = size - WAV_HEADER_SIZE
    pad = data_size % 2  # RIFF chunks are word-aligned: an odd data chunk is followed by one pad byte
    data_size -= pad
    header = (b"RIFF" + struct.pack("<I", size - 8) + b"WAVE"
              + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, SAMPLE_RATE, 1, 8)
              + b"data" + struct.pack("<I", data_size))
    return header + b"\x80" * data_size + b"\x00" * pad


def leave_voicemail(user: User, caller: str, size: int) -> tuple[Voicemail, Notification | None]:
    """Store a voicemail of ``size`` bytes for ``user`` and mail it to them (when they have an address)."""
    if size > MAX_WAV_BYTES:
        raise ValueError(f"a voicemail is at most {MAX_WAV_BYTES} bytes")
    data = silent_wav(size)
    voicemail = Voicemail(user_id=user.id, caller=caller, content_type="audio/wav", size=len(data), data=data)
    db.session.add(voicemail)
    db.session.flush()
    note = None
    if user.email:
        note = deliver(user.tenant, MailMessage(
            to=[user.email], subject=f"New voicemail from {caller or 'unknown caller'}",
            body=f"Hello {user.name},\n\n{caller or 'An unknown caller'} left you a voicemail on extension "
                 f"{user.extension}. The recording is attached.\n",
            attachments=[MailAttachment(voicemail.filename, "audio/wav", data)]))
    return voicemail, note


def notify_missed_call(user: User, caller: str) -> Notification | None:
    """Mail ``user`` that ``caller`` tried to reach them."""
    if not user.email:
        return None
    return deliver(user.tenant, MailMessage(
        to=[user.email], subject=f"Missed call from {caller or 'unknown caller'}",
        body=f"Hello {user.name},\n\nYou missed a call from {caller or 'an unknown caller'} on extension "
             f"{user.extension}.\n"))
