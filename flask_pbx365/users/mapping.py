"""From a Graph user object to the PBX's fields: names, email, phones (E.164), scope and skip rules."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import phonenumbers

from ..host import UserFields

#: The user properties every round selects (delta tracks exactly these).
SELECT = ("id", "userPrincipalName", "givenName", "surname", "displayName", "mail", "mobilePhone",
          "businessPhones", "department", "jobTitle", "accountEnabled", "userType")

#: ``json.dumps(data, sort_keys=True)`` without building an encoder per call (the same text, so the same digests).
_DIGEST_JSON = json.JSONEncoder(sort_keys=True)
_json_string = json.encoder.encode_basestring_ascii  # the encoder's own (C) string quoting, ensure_ascii as dumps

#: Bumped whenever the mapping below changes meaning, so stored delta state forces one full resync.
MAPPING_VERSION = 1


def text(value: Any) -> str:
    """A Graph string property, trimmed; ``None`` and non-strings become ``""``."""
    return value.strip() if isinstance(value, str) else ""


def is_guest(user: dict) -> bool:
    """True for B2B guests. Old accounts may lack ``userType``; their UPN still marks guests with ``#EXT#``."""
    user_type = text(user.get("userType")).lower()
    if user_type:
        return user_type != "member"
    return "#ext#" in text(user.get("userPrincipalName")).lower()


def is_nameless(user: dict) -> bool:
    return not text(user.get("givenName")) and not text(user.get("surname"))


def is_enabled(user: dict) -> bool:
    """``accountEnabled`` false disables; an absent value (not readable with User.ReadBasic.All) does not."""
    return user.get("accountEnabled") is not False


def email_of(user: dict) -> str | None:
    """``mail``, else the UPN (what the PBX mails voicemail and notices to)."""
    return text(user.get("mail")) or text(user.get("userPrincipalName")) or None


def office_phone(user: dict) -> str:
    phones = user.get("businessPhones")
    if isinstance(phones, list):
        for phone in phones:
            if text(phone):
                return text(phone)
    return ""


def to_e164(number: str, region: str) -> str | None:
    """``number`` in E.164 (``+14255550100``), reading national numbers in ``region``; None when not a valid
    phone number (an extension, a typo)."""
    if not number:
        return None
    try:
        parsed = phonenumbers.parse(number, region.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    # E.164 allows 15 digits at most; libphonenumber accepts some longer (German) numbers as "valid".
    return formatted if len(formatted) <= 16 else None


@dataclass(frozen=True)
class Mapped:
    """Everything user sync writes to one PBX user."""

    fields: UserFields
    #: The caller ID to set; only meaningful when ``manage_caller_id``.
    caller_id: str | None
    manage_caller_id: bool
    #: Why the office phone could not become the caller ID, or "".
    caller_id_note: str
    group: str

    def digest(self) -> str:
        """Hash of what would be written; unchanged users are not rewritten (computed once: planning compares
        it, the link stores it)."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        return hashlib.sha256(digest_text(self).encode()).hexdigest()


def _json(value: Any) -> str:
    return "null" if value is None else _json_string(value)


def digest_text(mapped: Mapped) -> str:
    """What :meth:`Mapped.digest` hashes: ``json.dumps`` of the mapping with sorted keys, written out directly
    (the same text, so stored digests stay valid; a JSON encoder per user costs as much as the rest of the
    mapping). Anything but strings and None in the fields takes the encoder."""
    fields = vars(mapped.fields)
    if not all(v is None or type(v) is str for v in fields.values()) or type(mapped.group) is not str or \
            not (mapped.caller_id is None or type(mapped.caller_id) is str):
        return _DIGEST_JSON.encode({"v": MAPPING_VERSION, "fields": dict(fields), "group": mapped.group,
                                    "caller_id": [mapped.manage_caller_id, mapped.caller_id]})
    inner = ", ".join(f"{_json_string(k)}: {_json(fields[k])}" for k in sorted(fields))
    return (f'{{"caller_id": [{"true" if mapped.manage_caller_id else "false"}, {_json(mapped.caller_id)}], '
            f'"fields": {{{inner}}}, "group": {_json_string(mapped.group)}, "v": {MAPPING_VERSION}}}')


def map_user(user: dict, options: dict, extension: str | None = None) -> Mapped:
    """Map a Graph user with the tenant's ``user_sync`` options; ``extension`` is the PBX user's, so an office
    phone that is just the extension written back is not taken for a caller ID."""
    first, last = text(user.get("givenName")), text(user.get("surname"))
    display = text(user.get("displayName")) or f"{first} {last}".strip()
    fields = UserFields(first_name=first, last_name=last, display_name=display, email=email_of(user),
                        mobile=text(user.get("mobilePhone")) or None, department=text(user.get("department")) or None,
                        job_title=text(user.get("jobTitle")) or None)
    manage = bool(options.get("caller_id_from_office_phone"))
    caller_id, note = None, ""
    if manage:
        phone = office_phone(user)
        if phone and phone != extension:
            caller_id = to_e164(phone, options.get("default_region") or "US")
            if caller_id is None:
                note = (f"office phone {phone!r} is not a valid number for region "
                        f"{options.get('default_region') or 'US'}; caller ID cleared")
    return Mapped(fields=fields, caller_id=caller_id, manage_caller_id=manage, caller_id_note=note,
                  group=options.get("extension_group") or "Microsoft 365")


def options_hash(options: dict) -> str:
    """Hash of the options that decide who is synced and what is written: a change forces a full resync."""
    keys = ("departments", "groups", "users", "members_only", "extension_group", "photos",
            "caller_id_from_office_phone", "default_region", "write_back_phone", "link_existing")
    data: dict[str, Any] = {"v": MAPPING_VERSION, "select": SELECT}
    for key in keys:
        value = options.get(key)
        data[key] = sorted(str(v).strip().lower() for v in value) if isinstance(value, list) else value
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
