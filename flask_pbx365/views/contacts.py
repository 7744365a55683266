"""The Contacts tab: personal / shared mailbox options, mode and schedule, Sync now / dry run, progress, history.

A thin shell over :mod:`flask_pbx365.contacts` and the run machinery the User Sync tab uses too.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from flask import abort, current_app, flash, jsonify, redirect, request, url_for

from .. import contacts as _contacts  # noqa: F401  (registers the contacts kind and its dispatcher)
from .. import signals
from ..exceptions import PBX365Error, SettingsError
from ..scheduler import next_run
from ..settings import get_settings, import_settings
from ..sync import get_run, list_runs, request_run, run_items, status_json
from .admin import TABS, admin_bp, current_tenant, render_tab

TABS.append(("pbx365_admin.contacts", "Contacts"))

KIND = "contacts"
ACTIONS = ("created", "updated", "deleted", "skipped", "error")
PAGE = 100


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


@admin_bp.route("/contacts", methods=["GET", "POST"])
def contacts():
    if request.method == "GET":
        return _page()
    tenant = current_tenant()
    options = _form_options()
    current = get_settings(tenant)["contacts"]
    try:
        import_settings(tenant, {KIND: options})
    except SettingsError as exc:
        return _page(options={**current, **options}, error=str(exc), status=400)
    signals.settings_changed.send(current_app._get_current_object(), tenant=tenant)
    removed = set(current["shared_mailboxes"]) - set(options["shared_mailboxes"])
    flash("Contacts settings saved." + (" The next run removes the contacts of the shared mailboxes you removed "
                                        "from the company phonebook." if removed else ""), "success")
    return redirect(url_for("pbx365_admin.contacts"))


@admin_bp.post("/contacts/run")
def contacts_run():
    dry_run = request.form.get("dry_run") in ("1", "on", "true")
    try:
        run = request_run(current_tenant(), KIND, dry_run=dry_run, trigger="manual")
    except PBX365Error as exc:
        flash(str(exc), "error")
        return redirect(url_for("pbx365_admin.contacts"))
    flash(("Dry run started: nothing will be changed." if dry_run else "Contacts sync started.")
          + " Progress is shown below.", "success")
    return redirect(url_for("pbx365_admin.contacts", run=run.id) + "#progress")


def _run_or_404(run_id: str):
    run = get_run(current_tenant(), run_id)
    if run is None or run.kind != KIND:
        abort(404)
    return run


@admin_bp.get("/contacts/runs/<run_id>/progress")
def contacts_progress(run_id: str):
    return jsonify(status_json(_run_or_404(run_id)))


@admin_bp.get("/contacts/runs/<run_id>")
def contacts_run_detail(run_id: str):
    run = _run_or_404(run_id)
    action = request.args.get("action") or None
    if action not in (None, *ACTIONS):
        abort(400, description=f"Unknown action filter {action!r}.")
    query = request.args.get("q", "").strip()
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    items, total = run_items(run.id, action=action, search=query, limit=PAGE, offset=(page - 1) * PAGE)
    if request.args.get("format") == "json":
        return jsonify({"run": status_json(run), "total": total, "items": [i.as_json() for i in items]})
    return render_tab("pbx365/contacts.html", detail=status_json(run), items=items, total=total, page=page,
                      pages=max(1, -(-total // PAGE)), action=action, query=query, actions=ACTIONS)
