"""PBX → Teams: a PBX call shows "Busy, In a call" in Teams within one job, is renewed while it lasts, ends at
hang-up, and never comes back as a PBX status."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa


def _expiry(view: dict) -> datetime:
    [session] = view["sessions"]
    return datetime.fromisoformat(session["expiresAt"].replace("Z", "+00:00"))


def test_a_call_shows_in_a_call_in_teams_and_hang_up_clears_it(tenv):
    tenv.teams("alice", "Available")
    tenv.call("alice", "on_call")
    view = tenv.teams_view("alice")
    assert (view["availability"], view["activity"]) == ("Busy", "InACall")
    [session] = view["sessions"]
    assert session["id"] == tenv.app_id.lower()
    assert (session["availability"], session["activity"]) == ("Busy", "InACall")
    assert timedelta(minutes=55) < _expiry(view) - datetime.now(timezone.utc) <= timedelta(minutes=60)
    tenv.call("alice", "idle")
    view = tenv.teams_view("alice")
    assert view["sessions"] == []
    assert (view["availability"], view["activity"]) == ("Available", "Available")


def test_ringing_also_shows_busy_and_teams_aggregates_with_the_users_own_client(tenv):
    tenv.teams("bob", "Available")
    tenv.call("bob", "ringing")
    assert tenv.teams_view("bob")["availability"] == "Busy"
    graph_admin = tenv.emulator
    # The user's own Teams client says Do not disturb: Teams' aggregation (DoNotDisturb > Busy) decides.
    graph_admin.admin("PUT", f"/tenants/{tenv.tid}/users/{tenv.oid('bob')}/teams-presence",
                      {"availability": "DoNotDisturb", "activity": "DoNotDisturb"})
    assert tenv.teams_view("bob")["availability"] == "DoNotDisturb"


def test_a_burst_of_state_changes_is_one_request(tenv):
    tenv.emulator.clear_requests()
    for state in ("ringing", "on_call", "idle", "ringing", "on_call"):
        answer = tenv.app.test_client().put(f"/api/tenants/{tenv.tenant}/users/{tenv.ext('carol')}/call-state",
                                            json={"state": state}, headers=tenv._auth())
        assert answer.status_code == 204
    tenv.work()
    sets = tenv.presence_requests("/presence/setPresence")
    assert len(sets) == 1, sets
    assert tenv.teams_view("carol")["activity"] == "InACall"


def test_a_long_call_is_renewed_by_the_scheduler(tenv):
    from flask_pbx365.models import TeamsPresenceState
    from flask_pbx365.scheduler import run_once
    from flask_pbx365.state import get_state

    tenv.call("alice", "on_call")
    first = _expiry(tenv.teams_view("alice"))
    with tenv.app.app_context():
        run_once(tenv.app)  # nothing due yet: the session has most of its hour left
    tenv.emulator.clear_requests()
    tenv.work()
    assert tenv.presence_requests("setPresence") == []
    with tenv.app.app_context():  # ten minutes before the end, as after 50 minutes on the phone
        session = get_state().db.session
        session.execute(sa.update(TeamsPresenceState).values(
            session_expires_at=datetime.now(timezone.utc) + timedelta(minutes=10)))
        session.commit()
        run_once(tenv.app)
    tenv.work()
    assert len(tenv.presence_requests("setPresence")) == 1
    assert _expiry(tenv.teams_view("alice")) >= first


def test_a_hang_up_the_host_did_not_report_ends_the_session_at_renewal(tenv):
    from demo_app.models import User, db
    from flask_pbx365.models import TeamsPresenceState
    from flask_pbx365.scheduler import run_once

    tenv.call("alice", "on_call")
    with tenv.app.app_context():
        user = db.session.scalar(sa.select(User).where(User.extension == tenv.ext("alice")))
        user.call_state = "idle"  # the PBX's phone hung up, the report got lost
        db.session.execute(sa.update(TeamsPresenceState).values(
            session_expires_at=datetime.now(timezone.utc) + timedelta(minutes=1)))
        db.session.commit()
        run_once(tenv.app)
    tenv.work()
    assert tenv.teams_view("alice")["sessions"] == []


def test_no_echo_the_pbx_call_does_not_come_back_as_a_status(tenv):
    tenv.teams("alice", "Available")
    tenv.poll()
    tenv.set_presence("alice", "lunch")
    tenv.call("alice", "on_call")
    assert tenv.teams_view("alice")["availability"] == "Busy"
    run = tenv.poll()
    assert tenv.presence("alice") == {"status": "lunch", "source": "user"}
    assert run["counts"]["updated"] == 0
    tenv.call("alice", "idle")
    tenv.poll()
    assert tenv.presence("alice") == {"status": "lunch", "source": "user"}


def test_pbx_to_teams_off_or_unlinked_records_nothing(tenv):
    tenv.teams_settings(to_teams=False)
    tenv.emulator.clear_requests()
    tenv.call("alice", "on_call")
    assert tenv.presence_requests("setPresence") == []
    local = tenv.create_pbx_user("local-caller")
    tenv.teams_settings(to_teams=True)
    answer = tenv.app.test_client().put(f"/api/tenants/{tenv.tenant}/users/{local['extension']}/call-state",
                                        json={"state": "on_call"}, headers=tenv._auth())
    assert answer.status_code == 204
    tenv.work()
    assert tenv.presence_requests("setPresence") == []


def test_a_bad_call_state_is_refused(tenv):
    answer = tenv.app.test_client().put(f"/api/tenants/{tenv.tenant}/users/{tenv.ext('alice')}/call-state",
                                        json={"state": "on_hold"}, headers=tenv._auth())
    assert answer.status_code == 400
    assert "on_call" in answer.get_json()["error"]


def test_a_missing_permission_is_shown_and_does_not_storm(tenv, admin_client):
    tenv.emulator.patch_application(tenv.tid, tenv.app_id, permissions=["User.Read.All", "Presence.Read.All"])
    tenv.emulator.clear_requests()
    tenv.call("alice", "on_call")
    from flask_pbx365.models import TeamsPresenceState
    from flask_pbx365.scheduler import run_once
    from flask_pbx365.state import get_state

    with tenv.app.app_context():
        row = get_state().db.session.scalar(sa.select(TeamsPresenceState))
        assert "Presence.ReadWrite.All" in row.push_error
        run_once(tenv.app)  # in backoff: no new job
    tenv.work()
    assert len(tenv.presence_requests("setPresence")) <= 2  # the attempt (and the retry with a fresh token)
    page = admin_client.get("/admin/integrations/microsoft365/teams-presence").get_data(as_text=True)
    assert "Grant the application permission Presence.ReadWrite.All" in page


def test_the_emulator_page_shows_in_a_call(tenv):
    import requests

    tenv.call("alice", "on_call")
    page = requests.get(f"{tenv.emulator.base_url}/_emulator/ui", params={"tenant": tenv.tid},
                        verify=tenv.emulator.ca_path, timeout=10).text
    row = page.split(f'data-user="alice@{tenv.domain}"')[1].split("</tr>")[0]
    assert "Busy · InACall" in row


def test_a_refused_push_is_an_overview_error_with_its_fix(tenv):
    tenv.emulator.patch_application(tenv.tid, tenv.app_id, permissions=["User.Read.All", "Presence.Read.All"])
    tenv.call("alice", "on_call")
    import json

    health = json.loads(tenv.app.test_cli_runner().invoke(args=["pbx365", "status", "acme", "--json"]).output)
    check = next(c for c in health["health"]["checks"] if c["name"] == "teams_calls")
    assert check["state"] == "error" and "Presence.ReadWrite.All" in check["fix"]
    assert check["link"] == "pbx365_admin.teams_presence"


def test_opting_out_during_a_call_ends_the_session_at_its_renewal(tenv):
    from flask_pbx365.models import TeamsPresenceState
    from flask_pbx365.scheduler import run_once
    from flask_pbx365.state import get_state

    tenv.call("alice", "on_call")
    tenv.teams_settings(opt_out=[tenv.oid("alice")])
    with tenv.app.app_context():
        session = get_state().db.session
        session.execute(sa.update(TeamsPresenceState).values(
            session_expires_at=datetime.now(timezone.utc) + timedelta(minutes=5)))
        session.commit()
        run_once(tenv.app)
    tenv.work()
    assert tenv.teams_view("alice")["sessions"] == []
