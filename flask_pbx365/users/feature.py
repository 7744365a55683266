"""The declaration of user sync."""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from ..feature import Feature, Subscriptions
from ..settings import (
    boolean,
    choice,
    extension_number,
    guid,
    list_of,
    region,
    schedule,
    text,
    timezone_name,
    whole,
)
from .jobs import run_user_sync
from .tab import TAB


def _schedule(settings: Mapping[str, Any]) -> tuple[str, str] | None:
    options = settings["user_sync"]
    return (options["schedule"], options["timezone"]) if options["mode"] == "automatic" else None


def _subscriptions(ctx: Any) -> Iterator[str]:
    if ctx.settings["user_sync"]["mode"] == "automatic" or ctx.has_run("users"):
        yield "users"


FEATURE = Feature(
    name="users",
    label="User sync",
    job=run_user_sync,
    schedule=_schedule,
    schedule_key="user_sync",
    cli_name="users",
    cli_help="Sync users from Microsoft 365 to PBX extensions.",
    permissions={
        "user_sync": (("User.ReadBasic.All",), ("User.Read.All",), ("Directory.Read.All",)),
        "photos": (("User.Read.All",), ("ProfilePhoto.Read.All",)),
        "group_filter": (("GroupMember.Read.All",), ("Group.Read.All",), ("Directory.Read.All",)),
        "phone_write_back": (("User-Phone.ReadWrite.All",), ("User.ReadWrite.All",)),
    },
    optional=("photos", "group_filter", "phone_write_back"),
    settings={"user_sync": {
        "mode": ("manual", choice("manual", "automatic")),
        "schedule": ("00:00", schedule),
        "timezone": ("UTC", timezone_name),
        "departments": ([], list_of(text())),
        "groups": ([], list_of(guid)),
        "users": ([], list_of(guid)),
        "members_only": (True, boolean),
        "start_extension": (None, extension_number),
        "extension_group": ("Microsoft 365", text()),
        "photos": (False, boolean),
        "caller_id_from_office_phone": (False, boolean),
        "default_region": ("US", region),
        "link_existing": (True, boolean),
        "deprovision": ("disable", choice("disable", "delete", "keep")),
        "delete_after_days": (30, whole(0, 3650)),
        "guard_percent": (10, whole(0, 100)),
        "guard_max": (500, whole(0, 1_000_000)),
        "write_back_phone": (False, boolean),
    }},
    tab=TAB,
    # users: Graph's maximum lifetime is 41760 minutes; only updates and deletes are notified.
    subscriptions=Subscriptions(_subscriptions, lifetime_minutes=41000, change_type="updated,deleted"),
)
