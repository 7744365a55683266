"""The Teams presence tab: both directions on or off, the poll interval, the Teams → PBX mapping, opted-out users,
who is in a call now, "Read Teams presence now" and the recent polls. A thin shell over
:mod:`flask_pbx365.teams_presence`."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, request, url_for

from ..feature import Tab
from ..host import PRESENCE_STATUSES
from ..models import TeamsPresenceState, UserLink
from ..presence.rules import LABELS
from ..routing import Routes
from ..runs import list_runs, run_items, status_json
from ..settings import get_settings
from ..state import get_state
from ..views.admin import current_tenant, render_tab, save_section, start_run
from .rules import ACTIVITIES, AVAILABILITIES
from .scope import KIND, unavailable_reason

routes = Routes()

AVAILABILITY_LABELS = {"Available": "Available", "Busy": "Busy", "DoNotDisturb": "Do not disturb",
                       "BeRightBack": "Be right back", "Away": "Away", "Offline": "Offline"}
ACTIVITY_LABELS = {"InACall": "In a call", "InAConferenceCall": "In a conference call",
                   "InAMeeting": "In a meeting", "Presenting": "Presenting", "OutOfOffice": "Out of office",
                   "Inactive": "Inactive"}
AS_AVAILABILITY = "__availability"


def _opt_out(tenant: str, text: str) -> tuple[list[str], list[str]]:
    """Object ids from one object id or sign-in address per line; and the lines that named nobody linked."""
    wanted = [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]
    links = get_state().db.session.execute(sa.select(UserLink.object_id, UserLink.user_principal_name).where(
        UserLink.tenant == tenant))
    by_key = {}
    for oid, upn in links:
        by_key[oid.lower()] = oid.lower()
        if upn:
            by_key[upn.lower()] = oid.lower()
    found = [by_key[w.lower()] for w in wanted if w.lower() in by_key]
    unknown = [w for w in wanted if w.lower() not in by_key]
    return list(dict.fromkeys(found)), unknown


def _form_settings(tenant: str) -> tuple[dict, list[str]]:
    mapping: dict[str, str | None] = {}
    for key in AVAILABILITIES:
        mapping[key] = request.form.get(f"map_{key}") or None
    for key in ACTIVITIES:
        value = request.form.get(f"map_{key}", AS_AVAILABILITY)
        if value != AS_AVAILABILITY:
            mapping[key] = value or None
    opt_out, unknown = _opt_out(tenant, request.form.get("opt_out", ""))
    try:
        interval = int(request.form.get("interval_seconds", "30"))
    except ValueError:
        interval = -1
    return {"enabled": request.form.get("enabled") == "on", "to_pbx": request.form.get("to_pbx") == "on",
            "to_teams": request.form.get("to_teams") == "on", "interval_seconds": interval, "mapping": mapping,
            "opt_out": opt_out}, unknown


def _in_a_call(tenant: str) -> list[dict]:
    session = get_state().db.session
    rows = list(session.scalars(sa.select(TeamsPresenceState).where(
        TeamsPresenceState.tenant == tenant, sa.or_(TeamsPresenceState.call_state != "idle",
                                                    TeamsPresenceState.push_error.is_not(None)))
        .order_by(TeamsPresenceState.call_changed_at.desc()).limit(200)))
    names = dict(session.execute(sa.select(UserLink.object_id, UserLink.display_name).where(
        UserLink.tenant == tenant, UserLink.object_id.in_([r.object_id for r in rows]))).all()) if rows else {}
    return [{"name": names.get(r.object_id) or r.object_id, "state": r.call_state.replace("_", " "),
             "since": r.call_changed_at, "until": r.session_expires_at, "error": r.push_error} for r in rows]


def _opt_out_text(tenant: str, ids: list[str]) -> str:
    if not ids:
        return ""
    upns = dict(get_state().db.session.execute(sa.select(UserLink.object_id, UserLink.user_principal_name).where(
        UserLink.tenant == tenant, UserLink.object_id.in_(ids))).all())
    return "\n".join(upns.get(i) or i for i in ids)


def _page(form: dict | None = None, error: str | None = None, status: int = 200):
    tenant = current_tenant()
    settings = get_settings(tenant)
    form = form or settings["teams_presence"]
    runs = list_runs(tenant, KIND, limit=10)
    details, _ = run_items(runs[0].id, limit=100) if runs else ([], 0)
    return render_tab(
        "pbx365/teams_presence.html", form=form, error=error, unavailable=unavailable_reason(tenant),
        availabilities=[(k, AVAILABILITY_LABELS[k]) for k in AVAILABILITIES],
        activities=[(k, ACTIVITY_LABELS[k]) for k in ACTIVITIES], as_availability=AS_AVAILABILITY,
        statuses=[(s, LABELS[s]) for s in PRESENCE_STATUSES], opt_out_text=_opt_out_text(tenant, form["opt_out"]),
        in_a_call=_in_a_call(tenant), runs=[status_json(r) for r in runs], details=[d.as_json() for d in details],
        connected=bool(settings["configure"]["client_id"] and settings["configure"]["directory_id"]),
    ), status


@routes.route("/teams-presence", methods=["GET", "POST"])
def teams_presence():
    if request.method == "GET":
        return _page()
    tenant = current_tenant()
    form, unknown = _form_settings(tenant)
    if unknown:
        return _page(form=form, status=400, error=(
            f"Not opted out: {', '.join(unknown)} is not a user linked by User Sync (enter an object id or a "
            "sign-in address, one per line)."))
    was = get_settings(tenant)["teams_presence"]
    error = save_section("teams_presence", form)
    if error:
        return _page(form=form, error=error, status=400)
    flash("Teams presence settings saved.", "success")
    turned_on = form["enabled"] and form["to_pbx"] and not (was["enabled"] and was["to_pbx"])
    if turned_on or (was["enabled"] and not form["enabled"]):  # apply (or give back) now, not at the next poll
        start_run(KIND, "Teams presence is being read now." if form["enabled"]
                  else "Statuses set from Teams are being restored.")
    return redirect(url_for("pbx365_admin.teams_presence"))


@routes.post("/teams-presence/run")
def teams_presence_run():
    start_run(KIND, "Reading Teams presence now; reload the page to see the result.")
    return redirect(url_for("pbx365_admin.teams_presence"))


TAB = Tab("teams_presence", "Teams presence", routes)
