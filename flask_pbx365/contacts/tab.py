"""The Contacts tab: personal / shared mailbox options, mode and schedule, Sync now / dry run, progress, history.

A thin shell over :mod:`flask_pbx365.contacts` and the run machinery the User Sync tab uses too.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from flask import flash, redirect, request, url_for

from .. import contacts as _contacts  # noqa: F401  (registers the contacts kind and its dispatcher)
from ..feature import Tab
from ..routing import Routes
from ..runs import list_runs, status_json
from ..runs.schedule import next_run
from ..settings import get_settings
from ..views.admin import current_tenant, render_tab, save_section
from ..views.runs import progress, run_detail, start_run

routes = Routes()

KIND = "contacts"
ACTIONS = ("created", "updated", "deleted", "skipped", "error")


def _form_options() -> dict:
    """The posted form as a ``contacts`` settings section (validated by import_settings)."""
    form = request.form
    addresses = [a.strip() for a in re.split(r"[\s,;]+", form.get("shared_mailboxes", "")) if a.strip()]
    return {"personal": form.get("personal") in ("on", "1", "true"),
            "shared_mailboxes": list(dict.fromkeys(addresses)),
            "mode": form.get("mode", "manual").strip(), "schedule": form.get("schedule", "").strip()}


def _next(options: dict, tz: str) -> str | None:
    if options.get("mode") != "automatic" or not (options.get("personal") or options.get("shared_mailboxes")):
        return None
    try:
        return next_run(options["schedule"], tz, datetime.now(timezone.utc)).isoformat()
    except (KeyError, ValueError):
        return None


def _page(options: dict | None = None, error: str | None = None, status: int = 200):
    settings = get_settings(current_tenant())
    options = options or settings["contacts"]
    runs = list_runs(current_tenant(), KIND, limit=20)
    active = next((r for r in runs if r.status in ("queued", "running")), None)
    timezone_name = settings["user_sync"]["timezone"]
    return render_tab("pbx365/contacts.html", options=options, error=error, runs=[status_json(r) for r in runs],
                      active=status_json(active) if active else None, timezone=timezone_name,
                      next_run=_next(options, timezone_name)), status


@routes.route("/contacts", methods=["GET", "POST"])
def contacts():
    if request.method == "GET":
        return _page()
    tenant = current_tenant()
    options = _form_options()
    current = get_settings(tenant)["contacts"]
    error = save_section(KIND, options)
    if error:
        return _page(options={**current, **options}, error=error, status=400)
    removed = set(current["shared_mailboxes"]) - set(options["shared_mailboxes"])
    flash("Contacts settings saved." + (" The next run removes the contacts of the shared mailboxes you removed "
                                        "from the company phonebook." if removed else ""), "success")
    return redirect(url_for("pbx365_admin.contacts"))


@routes.post("/contacts/run")
def contacts_run():
    return start_run(KIND, "pbx365_admin.contacts", "Contacts sync started.")


@routes.get("/contacts/runs/<run_id>/progress")
def contacts_progress(run_id: str):
    return progress(KIND, run_id)


@routes.get("/contacts/runs/<run_id>")
def contacts_run_detail(run_id: str):
    return run_detail(KIND, run_id, "pbx365/contacts.html", ACTIONS)


TAB = Tab("contacts", "Contacts", routes)
