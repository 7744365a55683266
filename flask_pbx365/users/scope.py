"""Who is in scope: member users, optionally narrowed to departments, group members and picked users."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..exceptions import NotFoundError
from ..graph import GraphClient
from .mapping import is_guest, text


@dataclass
class Scope:
    """The filters of the ``user_sync`` options.

    With no department, group or user picked, every member user is in scope. Otherwise a user is in scope
    when ANY of the picks matches: their department is one of the departments (case-insensitive), or they are
    a transitive member of one of the groups, or they were picked by object ID.
    """

    departments: frozenset[str]
    group_ids: tuple[str, ...]
    user_ids: frozenset[str]
    members_only: bool
    #: Object IDs of the selected groups' transitive user members; None when no group is selected.
    group_members: frozenset[str] | None = None

    @classmethod
    def from_options(cls, options: dict) -> "Scope":
        return cls(departments=frozenset(text(d).lower() for d in options.get("departments") or [] if text(d)),
                   group_ids=tuple(options.get("groups") or ()),
                   user_ids=frozenset(str(u).lower() for u in options.get("users") or []),
                   members_only=bool(options.get("members_only", True)))

    @property
    def filtered(self) -> bool:
        return bool(self.departments or self.group_ids or self.user_ids)

    def load_groups(self, client: GraphClient) -> None:
        """Read the selected groups' transitive user members (needs GroupMember.Read.All)."""
        if not self.group_ids:
            return
        members: set[str] = set()
        for group_id in self.group_ids:
            try:
                for item in client.iter_items(f"/groups/{group_id}/transitiveMembers",
                                              params={"$select": "id"}):
                    kind = str(item.get("@odata.type") or "#microsoft.graph.user").lower()
                    if kind.endswith(".user") and item.get("id"):
                        members.add(str(item["id"]).lower())
            except NotFoundError as exc:
                raise NotFoundError(
                    f"The group {group_id} selected on the User Sync tab no longer exists in Microsoft 365: "
                    "remove it from the group filter. Nobody was changed.",
                    status=exc.status, code=exc.code, request_id=exc.request_id) from exc
        self.group_members = frozenset(members)

    def members_hash(self) -> str | None:
        if self.group_members is None:
            return None
        return hashlib.sha256("\n".join(sorted(self.group_members)).encode()).hexdigest()

    def excluded_type(self, user: dict) -> bool:
        """True for a guest when only members are synced."""
        return self.members_only and is_guest(user)

    def selects(self, user: dict) -> bool:
        """True when the department/group/user picks include ``user`` (always, with no picks)."""
        if not self.filtered:
            return True
        oid = str(user.get("id") or "").lower()
        if oid in self.user_ids:
            return True
        if self.departments and text(user.get("department")).lower() in self.departments:
            return True
        return self.group_members is not None and oid in self.group_members
