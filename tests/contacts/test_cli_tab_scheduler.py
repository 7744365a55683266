"""Contacts sync as admins drive it: the CLI, the Contacts tab and the scheduler."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from tests.conftest import csrf_from
from tests.sync.test_runs_cli_and_tab import _mix_supported, _stop, _worker

TAB = "/admin/integrations/microsoft365/contacts"


def test_cli_queues_and_waits_with_exit_codes(cenv):
    env = cenv
    env.add_contact("alice", "Cli Clara", mobilePhone="+1 555 0801")
    env.contacts_settings(personal=True)
    runner = env.app.test_cli_runner()
    queued = runner.invoke(args=["pbx365", "sync", "contacts", "acme", "--dry-run", "--json"])
    assert queued.exit_code == 0, queued.output
    data = json.loads(queued.output)
    assert data["kind"] == "contacts" and data["status"] == "queued"
    env.work()
    assert env.status(data["run_id"])["counts"]["created"] == 1 and env.personal("alice") == {}

    proc = _worker(env)
    try:
        runner = env.app.test_cli_runner(mix_stderr=False) if _mix_supported() else env.app.test_cli_runner()
        done = runner.invoke(args=["pbx365", "sync", "contacts", "acme", "--wait", "--json"])
        assert done.exit_code == 0, done.output
        result = json.loads(done.stdout)
        assert set(result) == {"run_id", "kind", "status", "counts", "message"}
        assert result["status"] == "done" and result["counts"]["created"] == 1
        assert set(result["counts"]) == {"created", "updated", "linked", "disabled", "deleted", "skipped", "errors"}
        assert set(env.personal("alice")) == {"Cli Clara"}

        env.contacts_settings(shared_mailboxes=[f"carol@{env.domain}"])
        failed = runner.invoke(args=["pbx365", "sync", "contacts", "acme", "--wait", "--json"])
        assert failed.exit_code == 1, failed.output
        assert json.loads(failed.stdout)["counts"]["errors"] == 1
        assert "not a shared mailbox" in failed.stderr.splitlines()[-1]
    finally:
        _stop(proc)


def test_tab_saves_options_runs_and_shows_history_and_details(cenv, admin_client):
    env = cenv
    env.add_contact("reception", "Tab Tilly", businessPhones=["+1 555 0901"])
    html = admin_client.get(TAB).get_data(as_text=True)
    assert 'name="shared_mailboxes"' in html and "No runs yet." in html
    assert f'href="{TAB}"' in admin_client.get("/admin/integrations/microsoft365/user-sync").get_data(as_text=True)

    bad = admin_client.post(TAB, data={"csrf_token": csrf_from(html, "/contacts\""), "shared_mailboxes": "not-an-address",
                                       "mode": "manual", "schedule": "00:00"})
    assert bad.status_code == 400 and "is not an email address" in bad.get_data(as_text=True)

    reception = f"reception@{env.domain}"
    saved = admin_client.post(TAB, data={"csrf_token": csrf_from(html, "/contacts\""), "personal": "on",
                                         "shared_mailboxes": f"{reception}\n{reception}",
                                         "mode": "automatic", "schedule": "*/15 * * * *"})
    assert saved.status_code == 302
    exported = env.app.test_cli_runner().invoke(args=["pbx365", "settings", "export", "acme"])
    assert json.loads(exported.output)["contacts"] == {"personal": True, "shared_mailboxes": [reception],
                                                       "mode": "automatic", "schedule": "*/15 * * * *"}
    page = admin_client.get(TAB).get_data(as_text=True)
    assert "next scheduled run" in page and reception in page

    started = admin_client.post(f"{TAB}/run", data={"csrf_token": csrf_from(page, "/contacts/run")})
    assert started.status_code == 302
    page = admin_client.get(TAB).get_data(as_text=True)
    assert 'id="pbx365-run"' in page  # the live progress box while the run waits for a worker
    env.work()
    page = admin_client.get(TAB).get_data(as_text=True)
    assert 'id="pbx365-run"' not in page and "Done" in page
    run_id = page.split('id="run-', 1)[1].split('"', 1)[0]
    progress = admin_client.get(f"{TAB}/runs/{run_id}/progress").get_json()
    assert progress["status"] == "done" and progress["counts"]["created"] == 1
    detail = admin_client.get(f"{TAB}/runs/{run_id}").get_data(as_text=True)
    assert "Tab Tilly" in detail and reception in detail and "company phonebook" in detail
    assert admin_client.get(f"{TAB}/runs/{run_id}?action=deleted").get_data(as_text=True).count("<td>deleted</td>") == 0
    assert set(env.company()) >= {"Tab Tilly"}


def test_scheduler_dispatches_automatic_contact_runs(cenv):
    from flask_pbx365 import scheduler
    from flask_pbx365.runs import list_runs

    env = cenv
    env.contacts_settings(personal=True, mode="automatic", schedule="*/5 * * * *")
    t0 = datetime(2026, 5, 1, 9, 59, tzinfo=timezone.utc)
    scheduler.dispatch_due(env.app, t0)
    assert ("acme", "contacts") in scheduler.dispatch_due(env.app, t0 + timedelta(minutes=2))
    with env.app.app_context():
        assert [r.trigger for r in list_runs("acme", "contacts")] == ["schedule"]
