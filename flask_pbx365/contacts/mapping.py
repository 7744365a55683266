"""From a Graph contact to the PBX phonebook entry it becomes."""
from __future__ import annotations

from typing import Any, Iterable

from ..host import PhonebookEntry

#: Source of personal phonebook entries made by contacts sync (company entries name their shared mailbox).
PERSONAL_SOURCE = "microsoft365"

#: The contact properties the sync reads (``$select``); ``id`` always comes back.
SELECT = ("id", "displayName", "givenName", "middleName", "surname", "fileAs", "companyName", "businessPhones",
          "mobilePhone", "homePhones", "emailAddresses", "parentFolderId")


def _clean(values: Iterable[Any]) -> list[str]:
    """Trimmed, non-empty, de-duplicated strings in their original order."""
    out: list[str] = []
    for value in values:
        text = str(value).strip() if isinstance(value, str) else ""
        if text and text not in out:
            out.append(text)
    return out


def contact_name(contact: dict) -> str:
    """What the phonebook shows: the display name, else the name parts, else file-as, company or address."""
    parts = " ".join(_clean([contact.get("givenName"), contact.get("middleName"), contact.get("surname")]))
    emails = _emails(contact)
    for candidate in (contact.get("displayName"), parts, contact.get("fileAs"), contact.get("companyName"),
                      emails[0] if emails else None):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return ""


def _emails(contact: dict) -> list[str]:
    return _clean(a.get("address") for a in contact.get("emailAddresses") or [] if isinstance(a, dict))


def to_entry(contact: dict, source: str) -> PhonebookEntry | None:
    """The phonebook entry of ``contact`` (key: the Graph contact id), or None when it has nothing to dial or
    mail (no phone number and no email address)."""
    phones = {"business": _clean(contact.get("businessPhones") or []),
              "mobile": _clean([contact.get("mobilePhone")]),
              "home": _clean(contact.get("homePhones") or [])}
    emails = _emails(contact)
    if not any(phones.values()) and not emails:
        return None
    name = contact_name(contact) or next(p for numbers in phones.values() for p in numbers)
    return PhonebookEntry(key=str(contact["id"]), source=source, name=name[:255],
                          company=(contact.get("companyName") or "").strip()[:255], phones=phones, emails=emails)


def same(a: PhonebookEntry, b: PhonebookEntry) -> bool:
    """Whether two entries show the same thing (the host may hand back lists of another type or order of keys)."""
    def norm(e: PhonebookEntry) -> tuple:
        return (e.key, e.source, e.name, e.company or "",
                tuple(tuple(e.phones.get(k) or []) for k in ("business", "mobile", "home")), tuple(e.emails))
    return norm(a) == norm(b)
