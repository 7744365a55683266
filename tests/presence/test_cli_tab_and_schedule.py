"""Calendar presence as admins drive it: the CLI, the Presence tab, the scheduler's dispatcher, and what is
sent to Microsoft Graph."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

from tests.conftest import csrf_from
from tests.sync.conftest import PERMISSIONS, connect
from tests.sync.test_runs_cli_and_tab import _mix_supported, _stop, _worker

TAB = "/admin/integrations/microsoft365/presence"


def test_cli_sync_presence_wait_json(penv):
    penv.meeting("alice")
    proc = _worker(penv)
    try:
        runner = penv.app.test_cli_runner(mix_stderr=False) if _mix_supported() else penv.app.test_cli_runner()
        result = runner.invoke(args=["pbx365", "sync", "presence", "acme", "--wait", "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert set(data) == {"run_id", "kind", "status", "counts", "message"}
        assert (data["kind"], data["status"], data["counts"]["updated"]) == ("presence", "done", 1)
        assert penv.presence("alice") == {"status": "dnd", "source": "calendar"}
    finally:
        _stop(proc)


def test_missing_calendars_permission_fails_the_run_with_the_fix(penv):
    penv.meeting("alice")
    connect(penv.app, penv.emulator, penv.tid, permissions=PERMISSIONS)  # an app without Calendars.Read
    result = penv.app.test_cli_runner().invoke(args=["pbx365", "sync", "presence", "acme", "--json"])
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.output)["run_id"]
    penv.work()
    run = penv.status(run_id)
    assert run["status"] == "failed"
    assert "Calendars.Read" in run["message"] and "admin consent" in run["message"]
    assert penv.presence("alice") == {"status": "available", "source": "user"}


def test_tab_saves_the_mapping_and_shows_who_is_in_a_meeting(penv, admin_client):
    html = admin_client.get(TAB).get_data(as_text=True)
    assert 'name="map_busy"' in html and 'name="enabled" checked' in html
    assert "Nobody's status is set by a calendar entry" in html
    form = {"csrf_token": csrf_from(html, "/presence"), "enabled": "on", "map_busy": "dnd",
            "map_workingElsewhere": "", "map_oof": "away", "map_tentative": "lunch", "map_free": "", "map_unknown": ""}
    assert admin_client.post(TAB, data=form).status_code == 302
    exported = json.loads(penv.app.test_cli_runner().invoke(args=["pbx365", "settings", "export", "acme"]).output)
    assert exported["presence"]["mapping"] == {"busy": "dnd", "workingElsewhere": None, "oof": "away",
                                               "tentative": "lunch", "free": None, "unknown": None}
    bad = admin_client.post(TAB, data={**form, "map_busy": "sleeping"})
    assert bad.status_code == 400 and "must be null or one of" in bad.get_data(as_text=True)

    penv.meeting("bob", subject="Pipeline review", show_as="tentative")
    html = admin_client.get(TAB).get_data(as_text=True)
    answer = admin_client.post(TAB + "/run", data={"csrf_token": csrf_from(html, "/presence/run")})
    assert answer.status_code == 302
    penv.work()
    assert penv.presence("bob") == {"status": "lunch", "source": "calendar"}
    html = admin_client.get(TAB).get_data(as_text=True)
    in_meeting = html.split('id="pbx365-in-meeting"')[1].split("</table>")[0]
    assert "Bob Brown" in in_meeting and "Pipeline review" in in_meeting and "Lunch" in in_meeting
    assert "set from meetings 1," in html


def test_turning_it_off_on_the_tab_gives_statuses_back(penv, admin_client):
    penv.meeting("alice")
    penv.run()
    html = admin_client.get(TAB).get_data(as_text=True)
    answer = admin_client.post(TAB, data={"csrf_token": csrf_from(html, "/presence"), "map_busy": "dnd"})
    assert answer.status_code == 302
    assert "being restored" in admin_client.get(TAB).get_data(as_text=True)
    penv.work()
    assert penv.presence("alice") == {"status": "available", "source": "user"}


def test_tab_requires_a_tenant_admin_and_csrf(penv, admin_client):
    assert penv.app.test_client().get(TAB).status_code in (302, 303)  # not signed in: to the login page
    assert admin_client.post(TAB, data={"enabled": "on"}).status_code in (400, 403)


def test_dispatcher_runs_only_while_enabled(penv):
    from flask_pbx365 import scheduler
    from flask_pbx365.runs import list_runs

    t0 = datetime(2026, 5, 1, 9, 58, 30, tzinfo=timezone.utc)
    scheduler.dispatch_due(penv.app, t0)  # first sight: remembers the slot
    assert ("acme", "presence") in scheduler.dispatch_due(penv.app, t0 + timedelta(minutes=1))
    assert ("acme", "presence") in scheduler.dispatch_due(penv.app, t0 + timedelta(minutes=2))
    with penv.app.app_context():
        assert len(list_runs("acme", "presence")) == 1  # a queued run is joined, never piled up
    penv.work()
    penv.presence_settings(enabled=False)
    assert ("acme", "presence") not in scheduler.dispatch_due(penv.app, t0 + timedelta(minutes=3))
    with penv.app.app_context():
        assert [r.trigger for r in list_runs("acme", "presence")] == ["schedule"]


def test_requests_are_calendar_views_that_exist_in_the_csdl(penv):
    from flask_pbx365.emulator import csdl

    penv.meeting("alice")
    penv.emulator.clear_requests()
    penv.run()
    sent = [r for r in penv.emulator.requests_log() if "/calendarView" in r["path"]]
    assert len(sent) == 4  # alice, bob, carol and the admin; the disabled user and the guest are not synced
    schema = csdl.schema()
    for request in sent:
        assert schema.resolve_path(request["path"]) == "Collection(microsoft.graph.event)"
        query = parse_qs(request["query"])
        for prop in query["$select"][0].split(","):
            assert prop in schema.properties("microsoft.graph.event"), prop
        assert query["startDateTime"][0] < query["endDateTime"][0]


def test_quiet_runs_are_pruned_but_runs_that_changed_something_stay(penv):
    from flask_pbx365.runs import list_runs

    penv.app.config["PBX365_PRESENCE_QUIET_RUNS"] = 2
    meeting = penv.meeting("alice")
    busy = penv.run()
    quiet = [penv.run()["run_id"] for _ in range(4)]
    penv.end_meeting("alice", meeting)
    restored = penv.run()
    with penv.app.app_context():
        kept = [r.id for r in list_runs("acme", "presence", limit=50)]
    assert kept == [restored["run_id"], quiet[3], quiet[2], busy["run_id"]]
    assert penv.items(busy["run_id"], "updated")  # its details stay too
