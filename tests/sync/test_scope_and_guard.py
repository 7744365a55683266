"""Filters (departments, nested groups, picked users), resyncs, the mass-change guard and Graph errors."""
from __future__ import annotations

import json


def test_department_filter(env):
    env.settings(departments=["sales"])
    env.sync()
    assert sorted(env.synced()) == ["alice", "bob"]


def test_nested_group_filter(env):
    groups = env_groups(env)
    env.settings(groups=[groups["Everyone"]])  # Sales (alice, bob) nested, plus carol
    env.sync()
    assert sorted(env.synced()) == ["alice", "bob", "carol"]


def env_groups(env) -> dict[str, str]:
    """Group ids by name, read the way the tab's picker reads them."""
    from flask_pbx365.users.directory import directory_snapshot

    with env.app.app_context():
        return {g["displayName"]: g["id"] for g in directory_snapshot("acme", refresh=True)["groups"]}


def test_picked_users_add_to_departments(env):
    env.settings(departments=["Engineering"], users=[env.oid("alice")])
    env.sync()
    assert sorted(env.synced()) == ["alice", "carol"]


def test_group_membership_change_is_picked_up(env):
    groups = env_groups(env)
    env.settings(groups=[groups["Sales"]], guard_percent=100)
    env.sync()
    assert sorted(env.synced()) == ["alice", "bob"]
    env.emulator.set_group_members(env.tid, groups["Sales"], [env.oid("alice"), env.oid("carol")])
    result = env.sync()
    assert "membership of the selected groups changed" in result["message"]
    synced = env.synced()
    assert synced["carol"]["enabled"] and not synced["bob"]["enabled"]


def test_filter_change_forces_full_resync_and_deprovisions_out_of_scope(env):
    env.settings(guard_percent=100)
    env.sync()
    env.settings(departments=["Sales"])
    env.emulator.clear_requests()
    result = env.sync()
    assert result["message"].startswith("Full sync (filters or mapped fields changed)")
    log = env.emulator.requests_log()
    delta = [e for e in log if "/users/delta" in e["path"]]
    # A full read: the deltaLink for "now", then /users 999 a page (never the stored token)
    assert len(delta) == 1 and "deltatoken=latest" in (delta[0]["path"] + delta[0]["query"]).lower()
    assert any(e["path"].endswith("/v1.0/users") and "999" in e["query"] for e in log)
    synced = env.synced()
    assert synced["alice"]["enabled"] and synced["bob"]["enabled"]
    assert not synced["carol"]["enabled"] and not synced["admin"]["enabled"]
    assert {i["user_principal_name"].split("@")[0] for i in env.items(result["run_id"], "disabled")} == \
        {"carol", "admin"}


def test_expired_delta_token_means_full_resync(env):
    env.sync()
    env.emulator.reset_delta(env.tid)
    env.add_user("erin", "Erin", "Evans")
    result = env.sync()
    assert result["status"] == "done"
    assert result["message"].startswith("Full sync (the delta token expired)")
    assert "erin" in env.synced()


def _empty_directory_fault(env, users: list[dict] | None = None) -> None:
    """The next full read of /users answers with ``users`` (none: an empty directory) on its only page."""
    env.emulator.add_fault(method="GET", path=r"/v1\.0/users\?.*select", times=1, body={
        "value": users or []})


def test_guard_holds_a_run_against_an_empty_directory_until_confirmed(env):
    env.sync()
    env.emulator.reset_delta(env.tid)
    _empty_directory_fault(env)
    held = env.sync()
    assert held["status"] == "waiting_confirmation"
    assert "4 users" in held["message"] and "Nothing was changed" in held["message"]
    assert all(u["enabled"] for u in env.synced().values())
    assert len(env.items(held["run_id"], "disabled")) == 4
    notices = env.app.test_client().get("/api/tenants/acme/notifications", headers={
        "Authorization": f"Bearer {env.app.config['DEMO_API_TOKEN']}"}).get_json()
    assert any("waiting for your confirmation" in n["subject"] for n in notices)
    # The admin confirms: the run goes again against the (now whole) directory, so nobody is disabled.
    result = env.app.test_cli_runner().invoke(args=["pbx365", "sync", "confirm", "acme", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "queued"
    env.work()
    final = env.status(held["run_id"])
    assert final["status"] == "done", final["message"]
    assert all(u["enabled"] for u in env.synced().values())


def _held_notices(env) -> int:
    notices = env.app.test_client().get("/api/tenants/acme/notifications", headers={
        "Authorization": f"Bearer {env.app.config['DEMO_API_TOKEN']}"}).get_json()
    return sum("waiting for your confirmation" in n["subject"] for n in notices)


def test_scheduled_runs_join_a_held_run_and_the_admins_hear_of_it_once(env):
    from flask_pbx365.runs import request_run, status_json

    env.sync()
    env.emulator.reset_delta(env.tid)
    _empty_directory_fault(env)
    held = env.sync()
    assert held["status"] == "waiting_confirmation" and _held_notices(env) == 1
    for trigger in ("schedule", "notification", "schedule"):
        _empty_directory_fault(env)
        with env.app.app_context():
            joined = status_json(request_run("acme", "users", trigger=trigger))
        env.work()
        assert joined["run_id"] == held["run_id"], f"a {trigger} run made a second held run"
    env.emulator.clear_faults()
    assert env.status(held["run_id"])["status"] == "waiting_confirmation"
    assert _held_notices(env) == 1, "the admins were mailed again about the same hold"
    assert all(u["enabled"] for u in env.synced().values())


def test_confirm_without_a_run_id_never_guesses_between_kinds(env):
    from flask_pbx365.models import SyncRun

    env.sync()
    env.emulator.reset_delta(env.tid)
    _empty_directory_fault(env)
    held = env.sync()
    with env.app.app_context():  # a contacts run held too (as the guard of another kind would leave it)
        db = env.app.extensions["pbx365"].db
        db.session.add(SyncRun(tenant="acme", kind="contacts", status="waiting_confirmation", dry_run=False,
                               trigger="manual", counts={}, progress={}, message="held"))
        db.session.commit()
    runner = env.app.test_cli_runner()
    guess = runner.invoke(args=["pbx365", "sync", "confirm", "acme"])
    assert guess.exit_code != 0 and "contacts and users" in guess.output and "--kind" in guess.output
    assert env.status(held["run_id"])["status"] == "waiting_confirmation"
    wrong = runner.invoke(args=["pbx365", "sync", "confirm", "acme", held["run_id"], "--kind", "contacts"])
    assert wrong.exit_code != 0 and "users sync, not contacts" in wrong.output
    chosen = runner.invoke(args=["pbx365", "sync", "confirm", "acme", "--kind", "users", "--json"])
    assert chosen.exit_code == 0, chosen.output
    assert json.loads(chosen.output)["run_id"] == held["run_id"]


def test_guard_holds_a_partial_directory_and_confirmation_applies_it(env):
    env.settings(guard_max=1)
    env.sync()
    alice = next(u for u in env.entra_users() if u["id"] == env.oid("alice"))
    env.emulator.reset_delta(env.tid)
    for _ in range(2):  # the held run and its confirmed second go both see the partial directory
        _empty_directory_fault(env, [alice])
    held = env.sync()
    assert held["status"] == "waiting_confirmation" and "above the limit of 1 users" in held["message"]
    result = env.app.test_cli_runner().invoke(args=["pbx365", "sync", "confirm", "acme", held["run_id"]])
    assert result.exit_code == 0, result.output
    env.work()
    final = env.status(held["run_id"])
    assert final["status"] == "done" and final["counts"]["disabled"] == 3
    assert [name for name, u in env.synced().items() if u["enabled"]] == ["alice"]


def test_first_sync_is_never_held(env):
    env.settings(guard_percent=0, guard_max=0)
    assert env.sync()["status"] == "done"


def test_a_graph_error_means_no_deprovisioning(env):
    env.settings(guard_percent=100, photos=True)
    env.sync()
    env.emulator.delete_user(env.tid, env.oid("carol"))
    env.emulator.add_fault(path=r"/photo", times=100, status=500)
    result = env.sync()
    assert result["status"] == "failed" and "nobody was disabled or deleted" in result["message"]
    assert env.synced()["carol"]["enabled"]
    env.emulator.clear_faults()
    result = env.sync()  # the delta round is replayed, so the removal is not lost
    assert result["status"] == "done" and result["counts"]["disabled"] == 1
    assert not env.synced()["carol"]["enabled"]


def test_failed_read_changes_nothing(env):
    env.emulator.add_fault(path=r"/v1\.0/users/delta", times=10, status=403)
    result = env.sync()
    assert result["status"] == "failed" and "Nothing was changed" in result["message"]
    assert not env.synced()


def test_guard_thresholds_count_only_removals_of_linked_users(empty_env):
    """More than guard_percent % of the linked users, or more than guard_max users, holds; creations never count."""
    env = empty_env
    for n in range(10):
        env.add_user(f"u{n:02d}", f"First{n}", f"Last{n}")
    assert env.sync()["status"] == "done"
    for n in range(10, 25):
        env.add_user(f"u{n:02d}", f"First{n}", f"Last{n}")
    env.emulator.delete_user(env.tid, env.oid("u00"))
    result = env.sync()  # 15 creations and 1 of 10 linked users (exactly 10%, not more): applied
    assert result["status"] == "done", result["message"]
    assert (result["counts"]["created"], result["counts"]["disabled"]) == (15, 1)

    for name in ("u01", "u02", "u03"):  # 3 of 25 linked users: 12%
        env.emulator.delete_user(env.tid, env.oid(name))
    held = env.sync()
    assert held["status"] == "waiting_confirmation"
    assert "12% of the 25 synced users, above the 10% limit" in held["message"]
    assert "limit of" not in held["message"]
    assert all(env.synced()[name]["enabled"] for name in ("u01", "u02", "u03"))

    env.settings(guard_percent=100, guard_max=2)  # the absolute cap alone
    held = env.sync()
    assert held["status"] == "waiting_confirmation"
    assert "above the limit of 2 users" in held["message"] and "%" not in held["message"]
    env.settings(guard_max=3)  # 3 is not more than 3
    result = env.sync()
    assert result["status"] == "done" and result["counts"]["disabled"] == 3
    assert not any(env.synced()[name]["enabled"] for name in ("u01", "u02", "u03"))
