"""The declaration of contacts sync."""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from ..feature import Feature, Subscriptions
from ..notifications.subscriptions import MAX_MAILBOXES
from ..settings import boolean, choice, email, list_of, schedule
from .engine import KIND
from .jobs import run_contacts_sync
from .tab import TAB


def _schedule(settings: Mapping[str, Any]) -> tuple[str, str] | None:
    options = settings["contacts"]
    if options["mode"] != "automatic" or not (options["personal"] or options["shared_mailboxes"]):
        return None
    return options["schedule"], settings["user_sync"]["timezone"]


def _subscriptions(ctx: Any) -> Iterator[str]:
    options = ctx.settings["contacts"]
    for mailbox in options["shared_mailboxes"][:MAX_MAILBOXES]:
        yield f"users/{mailbox}/contacts"
    if options["personal"]:
        for oid in ctx.linked_users():
            yield f"users/{oid}/contacts"


FEATURE = Feature(
    name=KIND,
    label="Contact sync",
    job=run_contacts_sync,
    schedule=_schedule,
    schedule_key="contacts",
    cli_name="contacts",
    cli_help="Sync personal and shared mailbox contacts to the phonebooks.",
    permissions={
        "contacts": (("Contacts.Read",),),
        "shared_mailboxes": (("MailboxSettings.Read", "Contacts.Read"),),
    },
    optional=("contacts", "shared_mailboxes"),
    settings={"contacts": {
        "personal": (False, boolean),
        "shared_mailboxes": ([], list_of(email)),
        "mode": ("manual", choice("manual", "automatic")),
        "schedule": ("00:00", schedule),
    }},
    tab=TAB,
    # Outlook resources: Graph's maximum lifetime is 4230 minutes.
    subscriptions=Subscriptions(_subscriptions, lifetime_minutes=4200),
)
