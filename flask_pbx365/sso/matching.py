"""Who may sign in: the PBX user linked by user sync to the Entra (``tid``, ``oid``), inside the allowed set.

Matching is on Entra's immutable tenant and object IDs only. Email, UPN and ``preferred_username`` are never used
to find a user: they are mutable, and in other tenants attacker-controlled (the "nOAuth" takeover class).
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..connection import client_options, credentials_for
from ..exceptions import GraphError, SignInError
from ..graph import GraphClient
from ..host import HostUser
from ..models import UserLink
from ..settings import get_settings
from ..state import get_state

TARGET_LABELS = {"admin": "the admin portal", "web": "the web client", "app": "the app"}


def refusal(code: str, message: str, hint: str, status: int = 403) -> SignInError:
    """A :class:`SignInError` for a sign-in the portal refuses: ``message`` says why (shown to the user),
    ``hint`` what the tenant's administrator must do."""
    return SignInError(message, code=code, status=status, hint=hint)


@dataclass(frozen=True)
class Identity:
    """A verified Microsoft identity: directory (``tid``) and object (``oid``) IDs, plus names for messages."""

    directory_id: str
    object_id: str
    name: str = ""
    username: str = ""

    @classmethod
    def from_claims(cls, claims: dict) -> "Identity":
        return cls(str(claims["tid"]).lower(), str(claims["oid"]).lower(), str(claims.get("name") or ""),
                   str(claims.get("preferred_username") or ""))

    @property
    def who(self) -> str:
        return self.username or self.name or self.object_id


def find_link(tenant: str, identity: Identity) -> UserLink | None:
    """The tenant's user link for exactly (``tid``, ``oid``)."""
    db = get_state().db
    return db.session.scalar(sa.select(UserLink).where(
        UserLink.tenant == tenant, UserLink.directory_id == identity.directory_id,
        UserLink.object_id == identity.object_id))


def check_target(tenant: str, target: str) -> dict:
    """The tenant's ``sign_in`` settings when Microsoft sign-in is enabled for ``target``; a refusal otherwise."""
    settings = get_settings(tenant)["sign_in"]
    if not settings["enabled"]:
        raise refusal("sign_in_disabled", "Sign in with Microsoft is not enabled for this organization.",
                      "Turn it on in Integrations > Microsoft 365 > Sign In.", 404)
    if target not in settings["targets"]:
        raise refusal("target_disabled", f"Sign in with Microsoft is not enabled for {TARGET_LABELS[target]}.",
                      f"Tick {TARGET_LABELS[target]} under Integrations > Microsoft 365 > Sign In > Where.", 404)
    return settings


def resolve_user(tenant: str, identity: Identity, target: str) -> HostUser:
    """The PBX user ``identity`` signs in as, or a refusal saying why and what the admin must do."""
    settings = check_target(tenant, target)
    link = find_link(tenant, identity)
    if link is None:
        raise refusal("unlinked_user",
                      f"Your Microsoft account {identity.who} is not linked to a user of this PBX.",
                      "Include this user in Integrations > Microsoft 365 > User Sync (department, group or user "
                      "selection) and run a sync; sign-in only works for users that user sync created or linked.")
    if link.state != "active":
        raise refusal("disabled_user", f"Your PBX account (linked to {identity.who}) is {link.state}.",
                      "User sync disabled it because the user left the synced set or was disabled in Microsoft "
                      "365; add the user back to the sync selection and run a sync.")
    user = get_state().host.get_user(tenant, link.host_user_id)
    if user is None:
        raise refusal("unlinked_user", f"The PBX user linked to {identity.who} no longer exists.",
                      "Run a user sync to recreate or relink the user.")
    if not user.enabled:
        raise refusal("disabled_user", f"Your PBX account {user.username} is disabled.",
                      "Enable the user in the PBX (or re-include them in user sync).")
    if not is_allowed(tenant, settings, identity):
        raise refusal("not_allowed", f"{identity.who} is not among the users allowed to sign in with Microsoft.",
                      "Add the user (or one of their groups) under Integrations > Microsoft 365 > Sign In > Who, "
                      "or allow all synced users.")
    return user


def is_allowed(tenant: str, settings: dict, identity: Identity) -> bool:
    """Whether the linked user is in the allowed set: all synced users, selected users, or selected groups'
    (transitive) members, asked of Microsoft Graph."""
    who = settings["who"]
    if who == "all":
        return True
    if who == "users":
        return identity.object_id in {u.lower() for u in settings["users"]}
    groups = [g.lower() for g in settings["groups"]]
    if not groups:
        return False
    try:
        with GraphClient(credentials_for(tenant), **client_options()) as client:
            for group in groups:
                # transitiveMembers: nested groups count, as the tab says.
                for member in client.iter_items(f"/groups/{group}/transitiveMembers", params={"$select": "id"}):
                    if str(member.get("id", "")).lower() == identity.object_id:
                        return True
    except GraphError as exc:
        raise refusal("group_check_failed", "Your group memberships could not be checked with Microsoft 365.",
                      "Check the group object IDs on the Sign In tab and grant the app GroupMember.Read.All with "
                      f"admin consent (Configure tab). Details: {exc}", 503) from exc
    return False


def password_sign_in_refusal(tenant: str, user_id: str, target: str) -> str | None:
    """For the host's password form: ``None`` when ``user_id`` may sign in with a password at ``target``
    (``admin``/``web``/``app``), else the message to show.

    Only users linked by user sync are affected, and only when the Sign In tab says "Microsoft only" for an
    enabled target. Local PBX users (the tenant's own admin accounts) and the PBX's system administrators —
    who are not tenant users — always keep their password: the break-glass if Microsoft sign-in breaks.
    """
    settings = get_settings(tenant)["sign_in"]
    if not settings["enabled"] or settings["mode"] != "microsoft_only" or target not in settings["targets"]:
        return None
    db = get_state().db
    linked = db.session.scalar(sa.select(UserLink.id).where(
        UserLink.tenant == tenant, UserLink.host_user_id == str(user_id), UserLink.state == "active"))
    if linked is None:
        return None
    return "This account signs in with Microsoft: use the \"Sign in with Microsoft\" button."
