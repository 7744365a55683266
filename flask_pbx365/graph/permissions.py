"""Which application permissions each feature and each Graph call needs, and the connection test."""
from __future__ import annotations

import logging
import re
from typing import Any

from ..exceptions import GraphError, PBX365Error
from .credentials import AppCredentials

logger = logging.getLogger("flask_pbx365.graph")

#: feature -> alternative permission sets; a feature works when every permission of any one set is granted.
#: The first set is the least privileged one and is what the admin is told to add.
FEATURE_PERMISSIONS: dict[str, list[list[str]]] = {
    "user_sync": [["User.ReadBasic.All"], ["User.Read.All"], ["Directory.Read.All"]],
    "photos": [["User.Read.All"], ["ProfilePhoto.Read.All"]],
    "group_filter": [["GroupMember.Read.All"], ["Group.Read.All"], ["Directory.Read.All"]],
    "contacts": [["Contacts.Read"]],
    "shared_mailboxes": [["MailboxSettings.Read", "Contacts.Read"]],
    "mail": [["Mail.Send"]],
    "calendar": [["Calendars.Read"]],
    "phone_write_back": [["User-Phone.ReadWrite.All"], ["User.ReadWrite.All"]],
}

#: A granted permission also grants these (ReadWrite includes Read; the directory-wide ones include the rest).
IMPLIES: dict[str, tuple[str, ...]] = {
    "User.Read.All": ("User.ReadBasic.All",),
    "User.ReadWrite.All": ("User.Read.All", "User.ReadBasic.All", "User-Phone.ReadWrite.All"),
    "Directory.Read.All": ("User.Read.All", "User.ReadBasic.All", "Group.Read.All", "GroupMember.Read.All"),
    "Directory.ReadWrite.All": ("Directory.Read.All", "User.Read.All", "User.ReadBasic.All", "Group.Read.All",
                                "GroupMember.Read.All"),
    "Group.Read.All": ("GroupMember.Read.All",),
    "Group.ReadWrite.All": ("Group.Read.All", "GroupMember.Read.All"),
    "GroupMember.ReadWrite.All": ("GroupMember.Read.All",),
    "ProfilePhoto.ReadWrite.All": ("ProfilePhoto.Read.All",),
    "Contacts.ReadWrite": ("Contacts.Read",),
    "MailboxSettings.ReadWrite": ("MailboxSettings.Read",),
    "Calendars.ReadWrite": ("Calendars.Read",),
}

#: (method or None for any, path regex relative to /v1.0, permission to add, alternatives) - first match wins.
PATH_PERMISSIONS: list[tuple[str | None, re.Pattern[str], str, tuple[str, ...]]] = [
    (None, re.compile(r"^/users/[^/]+/photos?(/|$)", re.I), "ProfilePhoto.Read.All", ("User.Read.All",)),
    (None, re.compile(r"^/users/[^/]+/(contactFolders|contacts)(/|$)", re.I), "Contacts.Read", ()),
    (None, re.compile(r"^/users/[^/]+/mailboxSettings(/|$)", re.I), "MailboxSettings.Read", ()),
    ("POST", re.compile(r"^/users/[^/]+/sendMail$", re.I), "Mail.Send", ()),
    ("POST", re.compile(r"^/users/[^/]+/messages/[^/]+/send$", re.I), "Mail.Send", ()),
    (None, re.compile(r"^/users/[^/]+/(messages|mailFolders)(/|$)", re.I), "Mail.ReadWrite", ()),
    (None, re.compile(r"^/users/[^/]+/(calendar|calendars|calendarView|events)(/|$)", re.I),
     "Calendars.Read", ()),
    ("PATCH", re.compile(r"^/users/[^/]+$", re.I), "User-Phone.ReadWrite.All", ("User.ReadWrite.All",)),
    (None, re.compile(r"^/groups(/|$)", re.I), "GroupMember.Read.All", ("Group.Read.All",)),
    (None, re.compile(r"^/users(/|\?|$)", re.I), "User.Read.All", ("User.ReadBasic.All",)),
]


def permission_for(method: str, path: str) -> tuple[str, tuple[str, ...]] | None:
    """The application permission a Graph call needs (and acceptable alternatives), or None if unknown.

    ``path`` is relative to ``/v1.0`` without the query string (``/users/{id}/contacts``).
    """
    method = method.upper()
    for wanted_method, pattern, permission, alternatives in PATH_PERMISSIONS:
        if (wanted_method is None or wanted_method == method) and pattern.search(path):
            return permission, alternatives
    return None


def effective(granted: list[str] | set[str]) -> set[str]:
    """``granted`` plus every permission they imply."""
    result = set(granted)
    for permission in list(result):
        result.update(IMPLIES.get(permission, ()))
    return result


def feature_status(granted: list[str] | set[str]) -> dict[str, dict[str, Any]]:
    """Per feature: ``{"ok": bool, "missing": [...]}``; ``missing`` is from the alternative closest to done."""
    have = effective(granted)
    result: dict[str, dict[str, Any]] = {}
    for feature, alternatives in FEATURE_PERMISSIONS.items():
        missing_per_set = [[p for p in option if p not in have] for option in alternatives]
        best = min(missing_per_set, key=len)  # min keeps the first (least privileged) on ties
        result[feature] = {"ok": not best, "missing": best}
    return result


def test_connection(credentials: AppCredentials, **client_kw: Any) -> dict[str, Any]:
    """Acquire a token and report granted permissions and, per feature, whether it can work.

    Answers ``{"ok", "error", "granted", "features"}`` (the ``test-connection --json`` shape); ``ok`` is
    ``user_sync``'s. On a token failure ``error`` holds the admin-readable reason and every feature is not ok.
    A fresh token is acquired: a cached one would still show the permissions from before a new consent.
    """
    from .client import GraphClient
    from .tokens import forget

    forget(credentials)
    try:
        with GraphClient(credentials, **client_kw) as client:
            granted = sorted(set(client.token_roles()))
    except (GraphError, PBX365Error) as exc:
        logger.warning("Connection test of tenant %s failed: %s", credentials.tenant_key, exc)
        features = feature_status([])
        return {"ok": False, "error": str(exc), "granted": [], "features": features}
    features = feature_status(granted)
    return {"ok": features["user_sync"]["ok"], "error": None, "granted": granted, "features": features}


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported into tests
