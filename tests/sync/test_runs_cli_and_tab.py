"""Runs as admins drive them: the CLI, the User Sync tab, joining, progress, and a worker killed mid-run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import TEST_SECRET, csrf_from

TAB = "/admin/integrations/microsoft365/user-sync"


def test_cli_dry_run_and_exit_codes(env):
    runner = env.app.test_cli_runner()
    result = runner.invoke(args=["pbx365", "sync", "users", "acme", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    queued = json.loads(result.output)
    assert queued["status"] == "queued" and queued["kind"] == "users"
    env.work()
    assert env.status(queued["run_id"])["counts"]["created"] == 4
    assert not env.synced()


def test_cli_wait_prints_result_and_progress_on_stderr(env):
    proc = _worker(env)
    try:
        runner = env.app.test_cli_runner(mix_stderr=False) if _mix_supported() else env.app.test_cli_runner()
        result = runner.invoke(args=["pbx365", "sync", "users", "acme", "--wait", "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["status"] == "done" and data["counts"]["created"] == 4
        assert set(data) == {"run_id", "kind", "status", "counts", "message"}
        assert "%" in result.stderr
        # the guard's exit code: 3
        env.emulator.reset_delta(env.tid)
        env.emulator.add_fault(method="GET", path=r"/v1\.0/users\?.*select", times=1, body={"value": []})
        held = runner.invoke(args=["pbx365", "sync", "users", "acme", "--wait", "--json"])
        assert held.exit_code == 3, held.output
        assert json.loads(held.stdout)["status"] == "waiting_confirmation"
        assert held.stderr.splitlines()[-1].startswith("Error: Held for confirmation")
        confirmed = runner.invoke(args=["pbx365", "sync", "confirm", "acme", "--wait", "--json"])
        assert confirmed.exit_code == 0, confirmed.output
        assert json.loads(confirmed.stdout)["status"] == "done"
        # a failed run: exit 1, the JSON on stdout, the one-line reason on stderr
        env.emulator.add_fault(path=r"/v1\.0/users/delta", times=10, status=403)
        failed = runner.invoke(args=["pbx365", "sync", "users", "acme", "--wait", "--json"])
        assert failed.exit_code == 1, failed.output
        data = json.loads(failed.stdout)
        assert data["status"] == "failed" and set(data) == {"run_id", "kind", "status", "counts", "message"}
        assert set(data["counts"]) == {"created", "updated", "linked", "disabled", "deleted", "skipped", "errors"}
        reason = failed.stderr.splitlines()[-1]
        assert reason.startswith("Error: Reading users from Microsoft 365 failed") and "User.Read" in reason
    finally:
        _stop(proc)


def _mix_supported() -> bool:
    import inspect

    from click.testing import CliRunner

    return "mix_stderr" in inspect.signature(CliRunner.__init__).parameters


def test_cli_failures(env):
    runner = env.app.test_cli_runner()
    result = runner.invoke(args=["pbx365", "sync", "confirm", "acme"])
    assert result.exit_code == 1 and "waiting for confirmation" in result.output
    result = runner.invoke(args=["pbx365", "sync", "users", "globex"])
    assert result.exit_code == 1 and "Configure tab" in result.output


def test_second_request_joins_the_queued_run(env):
    first, second = env.request(), env.request()
    assert first["run_id"] == second["run_id"]
    assert env.request(dry_run=True)["run_id"] != first["run_id"]
    env.work()
    assert env.status(first["run_id"])["status"] == "done"
    assert env.request()["run_id"] != first["run_id"]


def test_scheduler_dispatches_automatic_runs(env):
    from datetime import datetime, timedelta, timezone

    from flask_pbx365 import scheduler
    from flask_pbx365.runs import list_runs

    env.settings(mode="automatic", schedule="*/5 * * * *")
    t0 = datetime(2026, 5, 1, 9, 59, tzinfo=timezone.utc)
    scheduler.dispatch_due(env.app, t0)
    assert scheduler.dispatch_due(env.app, t0 + timedelta(minutes=2)) == [("acme", "users")]
    with env.app.app_context():
        runs = list_runs("acme", "users")
        assert [r.trigger for r in runs] == ["schedule"]


def test_tab_saves_options_and_confirms_mode_switch(env, admin_client):
    page = admin_client.get(TAB)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for department in ("Sales", "Engineering", "IT"):
        assert f'value="{department}"' in html
    assert "Everyone" in html  # the group picker
    form = {"csrf_token": csrf_from(html, "microsoft365"), "mode": "automatic", "schedule": "02:30", "timezone": "Europe/Berlin",
            "departments": ["Sales"], "start_extension": "2000", "extension_group": "Microsoft 365",
            "default_region": "DE", "deprovision": "disable", "delete_after_days": "30", "guard_percent": "10",
            "guard_max": "500", "members_only": "on", "link_existing": "on"}
    answer = admin_client.post(TAB, data=form)
    assert answer.status_code == 200 and "Switch to automatic mode?" in answer.get_data(as_text=True)
    assert "02:30" in answer.get_data(as_text=True)
    answer = admin_client.post(TAB, data={**form, "confirm_mode": "automatic"})
    assert answer.status_code == 302
    exported = env.app.test_cli_runner().invoke(args=["pbx365", "settings", "export", "acme"])
    options = json.loads(exported.output)["user_sync"]
    assert (options["mode"], options["schedule"], options["departments"], options["start_extension"]) == \
        ("automatic", "02:30", ["Sales"], "2000")
    bad = admin_client.post(TAB, data={**form, "confirm_mode": "automatic", "default_region": "Germany"})
    assert bad.status_code == 400 and "two-letter country code" in bad.get_data(as_text=True)


def test_tab_sync_now_progress_history_and_details(env, admin_client):
    html = admin_client.get(TAB).get_data(as_text=True)
    answer = admin_client.post(TAB + "/run", data={"csrf_token": csrf_from(html, "microsoft365")})
    assert answer.status_code == 302
    run_id = answer.headers["Location"].split("run=")[1].split("#")[0]
    progress = admin_client.get(f"{TAB}/runs/{run_id}/progress").get_json()
    assert progress["status"] == "queued"
    assert 'role="progressbar"' in admin_client.get(TAB).get_data(as_text=True)
    env.work()
    progress = admin_client.get(f"{TAB}/runs/{run_id}/progress").get_json()
    assert progress["status"] == "done" and progress["progress"]["percent"] == 100
    history = admin_client.get(TAB).get_data(as_text=True)
    assert f"run-{run_id}" in history
    detail = admin_client.get(f"{TAB}/runs/{run_id}?action=skipped").get_data(as_text=True)
    assert "first and last name" not in detail and "guest account" in detail
    found = admin_client.get(f"{TAB}/directory.json?kind=users&q=caro").get_json()["items"]
    assert [u["displayName"] for u in found] == ["Carol Clark"]


def test_tab_confirms_a_held_run(env, admin_client):
    env.sync()
    env.emulator.reset_delta(env.tid)
    env.emulator.add_fault(method="GET", path=r"/v1\.0/users\?.*select", times=1, body={"value": []})
    held = env.sync()
    html = admin_client.get(TAB).get_data(as_text=True)
    assert "waiting for your confirmation" in html
    answer = admin_client.post(f"{TAB}/runs/{held['run_id']}/confirm", data={"csrf_token": csrf_from(html, "microsoft365")})
    assert answer.status_code == 302
    env.work()
    assert env.status(held["run_id"])["status"] == "done"


def _worker(env, **extra_env: str) -> subprocess.Popen:
    from flask_pbx365.state import get_state

    root = Path(__file__).resolve().parents[2]
    environ = {**os.environ, "DATABASE_URL": env.app.config["SQLALCHEMY_DATABASE_URI"],
               "REDIS_URL": env.app.config["PBX365_REDIS_URL"], "SECRET_KEY": env.app.config["SECRET_KEY"],
               "PBX365_SECRET_KEY": TEST_SECRET, "PYTHONPATH": str(root), **extra_env}
    assert get_state(env.app)
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "tests.sync.worker_app:create", "pbx365",
                             "worker"], cwd=root, env=environ, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _descendants(pid: int) -> list[int]:
    """Processes started by ``pid`` (RQ's work horse runs in its own session, so a group kill misses it)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_hard(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and its work horse, by their process ids."""
    for pid in [*_descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(10)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            _kill_hard(proc)


def test_sigkilled_worker_leaves_no_duplicates_and_next_run_completes(empty_env):
    """A planned (incremental) round killed between two batches; the streaming full round's kill is in the
    reliability matrix."""
    env = empty_env
    env.settings(write_back_phone=True)
    env.add_user("user00", "First0", "Last0")
    assert env.sync()["status"] == "done"
    for n in range(1, 45):
        env.add_user(f"user{n:02d}", f"First{n}", f"Last{n}")
    env.app.config["PBX365_SYNC_LOCK_TTL"] = 2
    # The write-back after the first batch hangs: the worker is killed while the run is half applied.
    env.emulator.add_fault(method="PATCH", path=r"/v1\.0/users/", times=1, delayMs=20000)
    proc = _worker(env, PBX365_SYNC_BATCH_SIZE="20", PBX365_SYNC_LOCK_TTL="2")
    try:
        run = env.request()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(env.synced()) < 21:
            time.sleep(0.1)
        time.sleep(0.5)  # the worker now waits for the delayed write-back
        _kill_hard(proc)
    finally:
        _stop(proc)
    env.emulator.clear_faults()
    made = [u for u in env.pbx_users() if (u["email"] or "").endswith(env.domain)]
    assert len(made) == 21 and all(u["m365_object_id"] for u in made)  # one whole batch, nothing half-made
    time.sleep(2.5)  # the dead run's lock expires
    result = env.sync()
    assert result["run_id"] != run["run_id"] and result["status"] == "done", result["message"]
    assert env.status(run["run_id"])["status"] == "failed"
    made = [u for u in env.pbx_users() if (u["email"] or "").endswith(env.domain)]
    assert len(made) == 45 and len({u["m365_object_id"] for u in made}) == 45
    assert len({u["extension"] for u in made}) == 45
    phones = {u["id"]: u.get("businessPhones") for u in env.entra_users()}
    assert all(phones[u["m365_object_id"]] == [u["extension"]] for u in made)


def test_runs_of_one_tenant_never_overlap_even_with_two_workers(env):
    """A real run and a dry run are separate runs; the tenant's Redis lock makes the second wait for the first."""
    from datetime import datetime

    env.emulator.add_fault(method="GET", path=r"/v1\.0/users/delta", times=2, delayMs=1500)
    workers = [_worker(env), _worker(env)]
    try:
        runs = [env.request()["run_id"], env.request(dry_run=True)["run_id"]]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and any(env.status(r)["status"] in ("queued", "running") for r in runs):
            time.sleep(0.2)
    finally:
        for proc in workers:
            _stop(proc)
    done = sorted((env.status(r) for r in runs), key=lambda r: r["started_at"])
    assert [r["status"] for r in done] == ["done", "done"]
    first_end, second_start = (datetime.fromisoformat(done[0]["finished_at"]),
                               datetime.fromisoformat(done[1]["started_at"]))
    assert first_end <= second_start
