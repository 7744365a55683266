"""Which application permission each Graph call needs, what a granted one implies, and checks against them."""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

#: A permission check: test-connection entry -> alternative permission sets; an entry works when every permission
#: of any one set is granted. The first set is the least privileged one and is what the admin is told to add.
#: The features declare theirs (:attr:`flask_pbx365.feature.Feature.permissions`).
PermissionChecks = Mapping[str, Sequence[Sequence[str]]]

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
    "Presence.ReadWrite.All": ("Presence.Read.All",),
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
    ("POST", re.compile(r"^/users/[^/]+/presence/\w+$", re.I), "Presence.ReadWrite.All", ()),
    (None, re.compile(r"^/(users/[^/]+/presence|communications/(getPresencesByUserId|presences))(/|$)", re.I),
     "Presence.Read.All", ("Presence.ReadWrite.All",)),
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


def feature_status(granted: list[str] | set[str], checks: PermissionChecks) -> dict[str, dict[str, Any]]:
    """Per entry of ``checks``: ``{"ok": bool, "missing": [...]}`` (from the alternative closest to done)."""
    have = effective(granted)
    result: dict[str, dict[str, Any]] = {}
    for feature, alternatives in checks.items():
        missing_per_set = [[p for p in option if p not in have] for option in alternatives]
        best = min(missing_per_set, key=len)  # min keeps the first (least privileged) on ties
        result[feature] = {"ok": not best, "missing": best}
    return result
