"""The User Sync tab: options, pickers, Sync now / dry run, live progress, run history and held-run confirmation.

A thin shell over :mod:`flask_pbx365.users` and :mod:`flask_pbx365.runs`: the same functions the CLI and the scheduler call.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import abort, flash, jsonify, redirect, request, url_for

from ..exceptions import PBX365Error, SettingsError
from ..feature import Tab
from ..routing import Routes
from ..runs import confirm_run, list_runs, status_json
from ..runs.schedule import next_run
from ..settings import get_settings
from ..views.admin import current_tenant, render_tab, save_section
from ..views.runs import progress, run_detail, run_or_404, start_run
from .directory import directory_snapshot, search
from .mapping import options_hash

routes = Routes()

BOOLEANS = ("members_only", "photos", "caller_id_from_office_phone", "link_existing", "write_back_phone")
INTEGERS = ("delete_after_days", "guard_percent", "guard_max")
TEXTS = ("mode", "schedule", "timezone", "start_extension", "extension_group", "default_region", "deprovision")
ACTIONS = ("created", "updated", "linked", "disabled", "deleted", "skipped", "error")


def _form_options() -> dict:
    """The posted form as a ``user_sync`` settings section (validated later by import_settings)."""
    form = request.form
    options: dict = {name: form.get(name, "").strip() for name in TEXTS}
    options["start_extension"] = options["start_extension"] or None
    for name in BOOLEANS:
        options[name] = form.get(name) in ("on", "1", "true")
    for name in INTEGERS:
        raw = form.get(name, "").strip()
        try:
            options[name] = int(raw)
        except ValueError:
            raise SettingsError(f"Setting user_sync.{name}: {raw!r} is not a whole number.") from None
    extra = [d.strip() for d in form.get("departments_extra", "").split(",") if d.strip()]
    options["departments"] = list(dict.fromkeys(form.getlist("departments") + extra))
    options["groups"] = list(dict.fromkeys(form.getlist("groups")))
    options["users"] = list(dict.fromkeys(form.getlist("users")))
    return options


def mode_effect(options: dict) -> str:
    """What switching to ``options["mode"]`` does, for the confirmation."""
    if options.get("mode") == "automatic":
        try:
            when = next_run(options["schedule"], options["timezone"], datetime.now(timezone.utc))
            first = f" The first run starts at {when:%Y-%m-%d %H:%M} UTC."
        except (KeyError, ValueError):
            first = ""
        return (f"Automatic mode: users are synced on the schedule {options.get('schedule')!r} "
                f"({options.get('timezone')}) without anyone clicking, and each run applies creations, updates and "
                f"the deprovisioning policy ({options.get('deprovision')}) on its own; runs that would remove many "
                f"users still wait for confirmation.{first} You can switch back to manual at any time.")
    return ("Manual mode: scheduled runs stop; users change in the PBX only when an admin clicks Sync now (or runs "
            "`flask pbx365 sync users`). Changes in Microsoft 365 wait until then. You can switch back at any time.")


def _page(options: dict | None = None, error: str | None = None, confirm_mode: str | None = None,
          status: int = 200, refresh: bool = False):
    tenant = current_tenant()
    settings = get_settings(tenant)
    options = options or settings["user_sync"]
    runs = list_runs(tenant, "users", limit=20)
    active = next((r for r in runs if r.status in ("queued", "running")), None)
    held = next((r for r in runs if r.status == "waiting_confirmation"), None)
    directory = directory_snapshot(tenant, refresh=refresh) if settings["configure"]["client_id"] else \
        {"departments": [], "groups": [], "users": [], "errors": ["Connect the tenant on the Configure tab first."]}
    users_by_id = {u["id"].lower(): u for u in directory["users"]}
    groups_by_id = {g["id"].lower(): g for g in directory["groups"]}
    departments = sorted({*directory["departments"], *options["departments"]}, key=str.lower)
    return render_tab(
        "pbx365/user_sync.html", options=options, error=error, confirm_mode=confirm_mode,
        mode_effect=mode_effect(options), runs=[status_json(r) for r in runs],
        active=status_json(active) if active else None, held=status_json(held) if held else None,
        directory=directory, departments=departments, users_by_id=users_by_id, groups_by_id=groups_by_id,
        next_run=_next(options),
    ), status


def _next(options: dict) -> str | None:
    if options.get("mode") != "automatic":
        return None
    try:
        return next_run(options["schedule"], options["timezone"], datetime.now(timezone.utc)).isoformat()
    except (KeyError, ValueError):
        return None


@routes.route("/user-sync", methods=["GET", "POST"])
def user_sync():
    if request.method == "GET":
        return _page(refresh=request.args.get("refresh") == "1")
    tenant = current_tenant()
    try:
        options = _form_options()
    except SettingsError as exc:
        return _page(error=str(exc), status=400)
    current = get_settings(tenant)["user_sync"]
    if options["mode"] != current["mode"] and request.form.get("confirm_mode") != options["mode"]:
        merged = {**current, **options}
        return _page(options=merged, confirm_mode=options["mode"])
    error = save_section("user_sync", options)
    if error:
        return _page(options={**current, **options}, error=error, status=400)
    flash("User sync settings saved." + (" Changed filters or fields make the next run a full resync."
                                         if _resync_needed(current, options) else ""), "success")
    return redirect(url_for("pbx365_admin.user_sync"))


def _resync_needed(before: dict, after: dict) -> bool:
    return options_hash(before) != options_hash({**before, **after})


@routes.post("/user-sync/run")
def user_sync_run():
    return start_run("users", "pbx365_admin.user_sync", "Sync started.")


def _run_or_404(run_id: str):
    return run_or_404("users", run_id)


@routes.get("/user-sync/runs/<run_id>/progress")
def user_sync_progress(run_id: str):
    return progress("users", run_id)


@routes.get("/user-sync/runs/<run_id>")
def user_sync_run_detail(run_id: str):
    return run_detail("users", run_id, "pbx365/user_sync.html", ACTIONS)


@routes.post("/user-sync/runs/<run_id>/confirm")
def user_sync_confirm(run_id: str):
    run = _run_or_404(run_id)
    try:
        confirm_run(current_tenant(), run.id)
    except PBX365Error as exc:
        flash(str(exc), "error")
        return redirect(url_for("pbx365_admin.user_sync"))
    flash("Confirmed: the run applies its changes now.", "success")
    return redirect(url_for("pbx365_admin.user_sync", run=run.id) + "#progress")


@routes.get("/user-sync/directory.json")
def user_sync_directory():
    """Search the tenant's users or groups for the pickers: ``?kind=users|groups&q=...``."""
    kind = request.args.get("kind", "users")
    if kind not in ("users", "groups", "departments"):
        abort(400, description="kind must be users, groups or departments.")
    data = directory_snapshot(current_tenant(), refresh=request.args.get("refresh") == "1")
    if kind == "departments":
        q = request.args.get("q", "").lower()
        return jsonify({"items": [d for d in data["departments"] if q in d.lower()], "errors": data["errors"]})
    return jsonify({"items": search(data[kind], request.args.get("q", "")), "errors": data["errors"]})


TAB = Tab("user_sync", "User Sync", routes)
