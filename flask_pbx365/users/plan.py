"""Planning a user sync run: from the users Graph returned to a list of actions.

The plan is computed completely before anything is applied whenever the mass-change guard could hold the run
(so it holds before it changes anything) and for a dry run (so it shows exactly what a real run would do).
Otherwise the engine takes the ready actions out as pages arrive (:meth:`Planner.take_ready`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa

from ..host import HostUser
from ..models import UserLink
from .mapping import Mapped, is_enabled, is_nameless, map_user, text
from .scope import Scope


class LinkRow(NamedTuple):
    """What planning knows of one :class:`UserLink`: its columns, not an ORM object (a batch's commit would expire
    and reload tens of thousands of them, and the plan may be made in the read-ahead thread)."""

    id: int
    object_id: str
    host_user_id: str
    state: str
    fields_hash: str | None
    user_principal_name: str | None
    display_name: str | None
    disabled_at: datetime | None


#: The columns of :class:`LinkRow`, to select.
LINK_COLUMNS = tuple(getattr(UserLink, name) for name in LinkRow._fields)


def link_rows(session, *where: sa.ColumnElement[bool]) -> list[LinkRow]:
    """The links matching ``where``, as rows."""
    return [LinkRow(*row) for row in session.execute(sa.select(*LINK_COLUMNS).where(*where))]


#: Action kinds, in the order they are applied.
UPSERTS = ("create", "link", "update", "enable")
REMOVALS = ("disable", "delete")


@dataclass
class Action:
    """One change to one PBX user (or one skipped Entra user)."""

    kind: str  # create, link, update, enable, relabel, writeback, disable, delete, skip, forget
    user: dict = field(default_factory=dict)  # the Graph user ({} when only the link is known)
    link: LinkRow | None = None
    host_user: HostUser | None = None
    mapped: Mapped | None = None
    reason: str = ""

    @property
    def object_id(self) -> str | None:
        return self.user.get("id") or (self.link.object_id if self.link else None)

    @property
    def upn(self) -> str | None:
        return self.user.get("userPrincipalName") or (self.link.user_principal_name if self.link else None)

    @property
    def name(self) -> str | None:
        return self.user.get("displayName") or (self.link.display_name if self.link else None)


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    #: Object IDs (lower case) of in-scope users this run keeps or makes active.
    active_ids: set[str] = field(default_factory=set)

    def of(self, *kinds: str) -> list[Action]:
        return [a for a in self.actions if a.kind in kinds]

    @property
    def removals(self) -> int:
        return len(self.of(*REMOVALS))


class Planner:
    """Decides what happens to each user. ``links`` are this directory's links; ``host_users`` every PBX user."""

    def __init__(self, options: dict, scope: Scope, links: list[LinkRow], host_users: list[HostUser],
                 now: datetime):
        self.options = options
        self.scope = scope
        self.now = now
        self.links = {link.object_id.lower(): link for link in links}
        self.host_users = {u.id: u for u in host_users}
        linked_hosts = {link.host_user_id for link in links}
        self.claimable: dict[str, list[HostUser]] = {}
        if options.get("link_existing", True):
            for user in host_users:
                if user.id in linked_hosts:
                    continue
                for key in {(user.email or "").strip().lower(), user.username.strip().lower()} - {""}:
                    self.claimable.setdefault(key, []).append(user)
        self.claimed: set[str] = set()
        self.plan = Plan()
        #: Object ids (lower case) with an action, also of actions already taken out to be applied.
        self.planned: set[str] = set()

    # --- decisions -----------------------------------------------------------------------------------------

    def consider(self, oid: str, user: dict) -> None:
        """Plan for one user Graph returned (``@removed`` included)."""
        link = self.links.get(oid)
        if "@removed" in user:
            reason = ("deleted in Microsoft 365" if (user["@removed"] or {}).get("reason") == "changed"
                      else "permanently deleted in Microsoft 365")
            self.deprovision(link, reason, user)
            return
        if self.scope.excluded_type(user):
            if link and link.state == "active":
                self.deprovision(link, "is a guest account now (only members are synced)", user)
            elif link is None and self.scope.selects(user):
                self._add(Action("skip", user, link, reason="guest account (userType Guest): guests are not synced"))
            return
        if not is_enabled(user):
            if link:
                self.deprovision(link, "account disabled in Microsoft 365", user)
            elif self.scope.selects(user):
                self._add(Action("skip", user, reason="account disabled in Microsoft 365"))
            return
        if not self.scope.selects(user):
            if link:
                self.deprovision(link, "outside the selected departments, groups and users", user)
            return
        if is_nameless(user):
            self._add(Action("skip", user, link, reason="first and last name are both empty"))
            if link and link.state != "deleted":
                self.plan.active_ids.add(oid)  # left as it is: neither updated nor removed
            return
        self.upsert(oid, user, link)

    def upsert(self, oid: str, user: dict, link: LinkRow | None) -> None:
        self.plan.active_ids.add(oid)
        host_user = self.host_users.get(link.host_user_id) if link else None
        if link is not None and host_user is not None and link.state != "deleted":
            mapped = map_user(user, self.options, host_user.extension)
            if link.state == "disabled":
                self._add(Action("enable", user, link, host_user, mapped, "back in scope in Microsoft 365"))
            elif link.fields_hash != mapped.digest():
                self._add(Action("update", user, link, host_user, mapped, self._changes(host_user, mapped)))
            elif text(user.get("userPrincipalName")) != (link.user_principal_name or "") or \
                    text(user.get("displayName")) != (link.display_name or ""):
                self._add(Action("relabel", user, link, host_user, mapped))
            elif self.options.get("write_back_phone") and user.get("businessPhones") != [host_user.extension]:
                self._add(Action("writeback", user, link, host_user, mapped))  # e.g. after an interrupted run
            return
        if link is None:
            match = self._match(user)
            if match is not None:
                mapped = map_user(user, self.options, match.extension)
                how = "same UPN or email"
                self._add(Action("link", user, None, match, mapped, f"existing PBX user {match.username} ({how})"))
                return
        reason = "new in Microsoft 365" if link is None else "the PBX user was deleted; created again"
        self._add(Action("create", user, link, None, map_user(user, self.options), reason))

    def deprovision(self, link: LinkRow | None, reason: str, user: dict | None = None) -> None:
        """Apply the deprovisioning policy to a linked user who is gone, disabled or out of scope."""
        if link is None or link.state == "deleted":
            return
        policy = self.options.get("deprovision", "disable")
        host_user = self.host_users.get(link.host_user_id)
        user = user if user and "@removed" not in user else {"id": link.object_id}
        if host_user is None:
            self._add(Action("forget", user, link, reason="the PBX user no longer exists"))
            return
        if policy == "keep":
            return
        days = int(self.options.get("delete_after_days", 30))
        if link.state == "active":
            if policy == "delete" and days == 0:
                self._add(Action("delete", user, link, host_user, reason=reason))
            else:
                self._add(Action("disable", user, link, host_user, reason=reason))
        elif link.state == "disabled" and policy == "delete" and self._deletion_due(link, host_user):
            self._add(Action("delete", user, link, host_user, reason=f"disabled for more than {days} days"))

    def finish(self, full: bool, seen: set[str]) -> Plan:
        """Add the removals a full round implies and the deletions that came due; returns the plan."""
        for oid, link in self.links.items():
            if oid in self.planned or oid in self.plan.active_ids:
                continue
            if full and oid not in seen and link.state == "active":
                self.deprovision(link, "no longer returned by Microsoft 365")
            elif link.state == "disabled" and self.options.get("deprovision") == "delete":
                host_user = self.host_users.get(link.host_user_id)
                if host_user is not None and self._deletion_due(link, host_user):
                    days = int(self.options.get("delete_after_days", 30))
                    self._add(Action("delete", {"id": link.object_id}, link, host_user,
                                     reason=f"disabled for more than {days} days"))
        return self.plan

    # --- helpers -------------------------------------------------------------------------------------------

    def _add(self, action: Action) -> None:
        self.plan.actions.append(action)
        if action.object_id:
            self.planned.add(action.object_id.lower())

    def take_ready(self) -> list[Action]:
        """Take the planned actions other than removals out of the plan (to apply them while the round is still
        being read); removals stay for the guard."""
        ready = [a for a in self.plan.actions if a.kind not in REMOVALS]
        self.plan.actions = [a for a in self.plan.actions if a.kind in REMOVALS]
        return ready

    def _deletion_due(self, link: LinkRow, host_user: HostUser) -> bool:
        days = int(self.options.get("delete_after_days", 30))
        since = link.disabled_at
        # A PBX admin who enabled the user again meanwhile has overruled the sync: no deletion.
        return not host_user.enabled and since is not None and since + timedelta(days=days) <= self.now

    def _match(self, user: dict) -> HostUser | None:
        if not self.claimable:
            return None
        for key in (text(user.get("userPrincipalName")).lower(), text(user.get("mail")).lower()):
            for candidate in self.claimable.get(key, []) if key else []:
                if candidate.id not in self.claimed:
                    self.claimed.add(candidate.id)
                    return candidate
        return None

    @staticmethod
    def _changes(host_user: HostUser, mapped: Mapped) -> str:
        fields = mapped.fields
        changed = [name for name, old, new in (
            ("first name", host_user.first_name, fields.first_name), ("last name", host_user.last_name, fields.last_name),
            ("display name", host_user.display_name, fields.display_name), ("email", host_user.email, fields.email),
            ("mobile", host_user.mobile, fields.mobile), ("department", host_user.department, fields.department),
            ("job title", host_user.job_title, fields.job_title)) if (old or None) != (new or None)]
        if mapped.manage_caller_id and (host_user.caller_id or None) != mapped.caller_id:
            changed.append("caller ID")
        if mapped.group not in host_user.groups:
            changed.append("extension group")
        return ", ".join(changed) or "synced settings changed"
