"""Teams presence as admins drive it (CLI, tab, schedule, test-connection) and at its limits: more than 650
users, throttling, a missing permission, a cloud without the presence API."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from tests.conftest import csrf_from
from tests.sync.conftest import connect
from tests.sync.test_runs_cli_and_tab import _mix_supported, _stop, _worker

from .conftest import TEAMS_PERMISSIONS

TAB = "/admin/integrations/microsoft365/teams-presence"


def test_cli_sync_teams_presence_wait_json(tenv):
    tenv.teams("alice", "DoNotDisturb")
    proc = _worker(tenv)
    try:
        runner = tenv.app.test_cli_runner(mix_stderr=False) if _mix_supported() else tenv.app.test_cli_runner()
        result = runner.invoke(args=["pbx365", "sync", "teams-presence", "acme", "--wait", "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert set(data) == {"run_id", "kind", "status", "counts", "message"}
        assert (data["kind"], data["status"], data["counts"]["updated"]) == ("teams_presence", "done", 1)
    finally:
        _stop(proc)
    assert tenv.presence("alice") == {"status": "dnd", "source": "teams"}


def test_more_than_650_users_are_read_in_chunks_of_650(empty_env):
    env = empty_env
    env.emulator.generate(tenantId=env.tid, users=1400, contactsPerUser=0, eventsPerUser=0, photos=False, seed=5)
    connect(env.app, env.emulator, env.tid, permissions=TEAMS_PERMISSIONS)
    env.settings(guard_percent=100)
    assert env.sync()["status"] == "done"
    linked = [u for u in env.pbx_users() if u["m365_object_id"]]
    assert len(linked) > 1300 - 100  # some generated users are guests or disabled: still 2 chunks
    env.emulator.admin("PUT", f"/tenants/{env.tid}/teams-presence",
                       {u["m365_object_id"]: {"availability": "Busy", "activity": "InAMeeting"} for u in linked})
    from flask_pbx365.runs import request_run, status_json
    from flask_pbx365.settings import import_settings

    with env.app.app_context():
        import_settings("acme", {"teams_presence": {"enabled": True}})
        run = status_json(request_run("acme", "teams_presence"))
    env.emulator.clear_requests()
    env.work()
    result = env.status(run["run_id"])
    assert result["status"] == "done", result["message"]
    reads = [r for r in env.emulator.requests_log() if r["path"].endswith("/getPresencesByUserId")]
    assert len(reads) == -(-len(linked) // 650)
    assert result["counts"]["updated"] == len(linked)
    assert {u["presence"] for u in env.pbx_users() if u["m365_object_id"]} == {"dnd"}


def test_throttled_polls_wait_for_retry_after_and_finish(tenv):
    tenv.teams("alice", "Away")
    tenv.emulator.clear_requests()
    tenv.emulator.add_fault(path="getPresencesByUserId", times=1, status=429, retryAfter=1)
    started = datetime.now(timezone.utc)
    run = tenv.poll()
    assert run["status"] == "done", run["message"]
    reads = [r for r in tenv.emulator.requests_log() if r["path"].endswith("/getPresencesByUserId")]
    assert [r["status"] for r in reads] == [429, 200]
    gap = datetime.fromisoformat(reads[1]["at"].replace("Z", "+00:00")) - datetime.fromisoformat(
        reads[0]["at"].replace("Z", "+00:00"))
    assert gap >= timedelta(seconds=0.9) and datetime.now(timezone.utc) - started < timedelta(seconds=30)
    assert tenv.presence("alice") == {"status": "away", "source": "teams"}


def test_a_missing_permission_fails_the_poll_with_the_fix_and_test_connection_names_it(tenv):
    tenv.teams("alice", "Busy")
    tenv.emulator.patch_application(tenv.tid, tenv.app_id, permissions=["User.Read.All"])
    run = tenv.poll()
    assert run["status"] == "failed"
    assert "Presence.Read.All" in run["message"]
    assert tenv.presence("alice") == {"status": "available", "source": "user"}
    result = tenv.app.test_cli_runner().invoke(args=["pbx365", "test-connection", "acme", "--json"])
    feature = json.loads(result.output)["features"]["teams_presence"]
    assert feature["ok"] is False
    assert feature["missing"] == ["Presence.Read.All", "Presence.ReadWrite.All"]


def test_test_connection_is_ok_with_readwrite_alone(tenv):
    tenv.emulator.patch_application(tenv.tid, tenv.app_id, permissions=["User.Read.All", "Presence.ReadWrite.All"])
    result = tenv.app.test_cli_runner().invoke(args=["pbx365", "test-connection", "acme", "--json"])
    assert json.loads(result.output)["features"]["teams_presence"] == {"ok": True, "missing": []}


def test_21vianet_refuses_clearly_and_nothing_polls(tenv, admin_client):
    from flask_pbx365 import scheduler

    tenv.emulator.patch_tenant(tenv.tid, cloud="china")
    tenv.teams("alice", "Busy")
    run = tenv.poll()
    assert run["status"] == "failed"
    assert "21Vianet" in run["message"]
    result = tenv.app.test_cli_runner().invoke(args=["pbx365", "test-connection", "acme", "--json"])
    feature = json.loads(result.output)["features"]["teams_presence"]
    assert feature["ok"] is False and "21Vianet" in feature["reason"]
    assert "21Vianet" in admin_client.get(TAB).get_data(as_text=True)
    tenv.call("alice", "on_call")
    assert [r for r in tenv.emulator.requests_log() if "setPresence" in r["path"]] == []
    with tenv.app.app_context():
        from flask_pbx365.features import FEATURES

        feature = next(f for f in FEATURES if f.name == "teams_presence")
        settings = {"teams_presence": {"enabled": True, "to_pbx": True, "interval_seconds": 30},
                    "configure": {"cloud": "china"}}
        assert feature.schedule(settings) is None
    assert scheduler.next_runs  # the dispatcher reads the same declaration


def test_dispatcher_polls_every_interval_and_joins_a_waiting_run(tenv):
    from flask_pbx365 import scheduler
    from flask_pbx365.runs import list_runs

    tenv.teams_settings(interval_seconds=20)
    t0 = datetime(2026, 5, 1, 9, 58, 1, tzinfo=timezone.utc)
    scheduler.dispatch_due(tenv.app, t0)  # first sight: remembers the slot
    assert ("acme", "teams_presence") in scheduler.dispatch_due(tenv.app, t0 + timedelta(seconds=20))
    assert ("acme", "teams_presence") not in scheduler.dispatch_due(tenv.app, t0 + timedelta(seconds=25))
    assert ("acme", "teams_presence") in scheduler.dispatch_due(tenv.app, t0 + timedelta(seconds=40))
    with tenv.app.app_context():
        assert len(list_runs("acme", "teams_presence")) == 1  # queued run joined
        nxt = scheduler.next_runs("acme", t0)["teams_presence"]
    assert nxt == "2026-05-01T09:58:20+00:00"
    tenv.teams_settings(to_pbx=False)
    assert ("acme", "teams_presence") not in scheduler.dispatch_due(tenv.app, t0 + timedelta(seconds=60))


def test_tab_saves_mapping_and_opt_out_and_shows_calls(tenv, admin_client):
    html = admin_client.get(TAB).get_data(as_text=True)
    assert 'name="map_Busy"' in html and 'name="enabled" checked' in html
    form = {"csrf_token": csrf_from(html, "/teams-presence"), "enabled": "on", "to_pbx": "on", "to_teams": "on",
            "interval_seconds": "45", "map_Available": "available", "map_Busy": "away", "map_DoNotDisturb": "dnd",
            "map_BeRightBack": "away", "map_Away": "away", "map_Offline": "", "map_Presenting": "dnd",
            "map_InAMeeting": "", "opt_out": f"bob@{tenv.domain}\n{tenv.oid('carol')}"}
    for key in ("InACall", "InAConferenceCall", "OutOfOffice", "Inactive"):
        form[f"map_{key}"] = "__availability"
    assert admin_client.post(TAB, data=form).status_code == 302
    exported = json.loads(tenv.app.test_cli_runner().invoke(args=["pbx365", "settings", "export", "acme"]).output)
    options = exported["teams_presence"]
    assert options["interval_seconds"] == 45
    assert options["mapping"] == {"Available": "available", "Busy": "away", "DoNotDisturb": "dnd",
                                  "BeRightBack": "away", "Away": "away", "Offline": None, "Presenting": "dnd",
                                  "InAMeeting": None}
    assert sorted(options["opt_out"]) == sorted([tenv.oid("bob"), tenv.oid("carol")])
    html = admin_client.get(TAB).get_data(as_text=True)
    assert f"bob@{tenv.domain}" in html
    bad = admin_client.post(TAB, data={**form, "opt_out": "nobody@nowhere.example"})
    assert bad.status_code == 400 and "nobody@nowhere.example" in bad.get_data(as_text=True)
    bad = admin_client.post(TAB, data={**form, "interval_seconds": "2"})
    assert bad.status_code == 400 and "from 10 to 86400" in bad.get_data(as_text=True)

    tenv.call("alice", "on_call")
    html = admin_client.get(TAB).get_data(as_text=True)
    on_phone = html.split('id="pbx365-in-a-call"')[1].split("</table>")[0]
    assert "Alice" in on_phone and "on call" in on_phone


def test_tab_requires_a_tenant_admin_and_csrf(tenv, admin_client):
    assert tenv.app.test_client().get(TAB).status_code in (302, 303)
    assert admin_client.post(TAB, data={"enabled": "on"}).status_code in (400, 403)
    assert admin_client.post(TAB + "/run", data={}).status_code in (400, 403)


def test_settings_import_refuses_an_unknown_teams_value(tenv, tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"teams_presence": {"mapping": {"Sleeping": "away"}}}))
    result = tenv.app.test_cli_runner().invoke(args=["pbx365", "settings", "import", "acme", str(path)])
    assert result.exit_code != 0
    assert "Sleeping" in (result.output + str(result.exception))
