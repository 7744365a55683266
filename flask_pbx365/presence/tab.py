"""The Presence tab: calendar presence on or off, the Show as → PBX status mapping, who a meeting drives now,
"Check calendars now" and the recent runs. A thin shell over :mod:`flask_pbx365.presence`."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, request, url_for

from ..feature import Tab
from ..host import PRESENCE_STATUSES
from ..models import PresenceState, UserLink
from ..presence.rules import LABELS
from ..routing import Routes
from ..runs import list_runs, run_items, status_json
from ..settings import get_settings
from ..state import get_state
from ..views.admin import current_tenant, render_tab, save_section, start_run
from .engine import KIND

routes = Routes()

#: Outlook's Show as values in the order Outlook lists them, with its labels.
SHOW_AS = (("free", "Free"), ("workingElsewhere", "Working elsewhere"), ("tentative", "Tentative"),
           ("busy", "Busy"), ("oof", "Out of office"), ("unknown", "Unknown"))


def _form_settings() -> dict:
    mapping = {}
    for key, _ in SHOW_AS:
        value = request.form.get(f"map_{key}", "")
        mapping[key] = value or None
    return {"enabled": request.form.get("enabled") == "on", "mapping": mapping}


def _in_meeting(tenant: str) -> list[dict]:
    """The users whose status a meeting sets right now, as the last run left them."""
    session = get_state().db.session
    rows = session.scalars(sa.select(PresenceState).where(PresenceState.tenant == tenant,
                                                          PresenceState.applied_status.is_not(None)))
    links = {link.host_user_id: link for link in session.scalars(
        sa.select(UserLink).where(UserLink.tenant == tenant))}
    users = {u.id: u for u in get_state().host.list_users(tenant)}
    out = []
    for row in rows:
        link, user = links.get(row.host_user_id), users.get(row.host_user_id)
        out.append({"name": (link.display_name if link else None) or (user.display_name if user else row.object_id),
                    "extension": user.extension if user else "", "status": LABELS.get(row.applied_status, ""),
                    "subject": row.event_subject or "", "until": row.event_end,
                    "previous": LABELS.get(row.previous_status or "", row.previous_status or "")})
    return sorted(out, key=lambda x: (x["extension"], x["name"]))


def _page(form: dict | None = None, error: str | None = None, status: int = 200):
    tenant = current_tenant()
    settings = get_settings(tenant)
    runs = list_runs(tenant, KIND, limit=10)
    last = runs[0] if runs else None
    details, _ = run_items(last.id, limit=100) if last else ([], 0)
    return render_tab(
        "pbx365/presence.html", form=form or settings["presence"], error=error, show_as=SHOW_AS,
        statuses=[(s, LABELS[s]) for s in PRESENCE_STATUSES], in_meeting=_in_meeting(tenant),
        runs=[status_json(r) for r in runs], details=[d.as_json() for d in details],
        connected=bool(settings["configure"]["client_id"] and settings["configure"]["directory_id"]),
    ), status


@routes.route("/presence", methods=["GET", "POST"])
def presence():
    if request.method == "GET":
        return _page()
    tenant = current_tenant()
    form = _form_settings()
    was_enabled = get_settings(tenant)["presence"]["enabled"]
    error = save_section("presence", form)
    if error:
        return _page(form=form, error=error, status=400)
    flash("Presence settings saved.", "success")
    if form["enabled"] != was_enabled:
        # Turning it on applies meetings in progress now; turning it off gives statuses set by meetings back.
        start_run(KIND, "Calendars are being checked now." if form["enabled"]
                  else "Statuses set from calendars are being restored.")
    return redirect(url_for("pbx365_admin.presence"))


@routes.post("/presence/run")
def presence_run():
    start_run(KIND, "Checking calendars now; reload the page to see the result.")
    return redirect(url_for("pbx365_admin.presence"))


TAB = Tab("presence", "Presence", routes)
