"""User sync against the emulator: full and delta rounds, skips, identity, fields, paging, deprovisioning."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from .conftest import connect


def test_first_sync_creates_members_and_skips_guests_disabled_and_nameless(env):
    env.add_user("nameless", "", "", displayName="Shared Printer")
    result = env.sync()
    assert result["status"] == "done", result
    synced = env.synced()
    assert sorted(synced) == ["admin", "alice", "bob", "carol"]
    alice = synced["alice"]
    assert (alice["first_name"], alice["last_name"], alice["display_name"]) == ("Alice", "Anders", "Alice Anders")
    assert (alice["department"], alice["job_title"], alice["mobile"]) == ("Sales", "Account Manager", "+1 206 555 0101")
    assert alice["groups"] == ["Microsoft 365"] and alice["enabled"]
    assert alice["m365_object_id"] == env.oid("alice")
    assert alice["caller_id"] is None  # caller ID from office phone is off by default
    skipped = {i["user_principal_name"].split("@")[0]: i["detail"] for i in env.items(result["run_id"], "skipped")}
    assert "guest" in skipped["gina_partner.example#EXT#"].lower()
    assert "disabled" in skipped["dave"]
    assert "first and last name are both empty" in skipped["nameless"]
    assert result["counts"]["created"] == 4 and result["counts"]["skipped"] == 3


def test_email_falls_back_to_upn(empty_env):
    empty_env.add_user("nomail", "No", "Mail", mail=None)
    assert empty_env.sync()["status"] == "done"
    assert empty_env.synced()["nomail"]["email"] == f"nomail@{empty_env.domain}"


def test_delta_after_add_update_delete_and_restore(env):
    env.settings(guard_percent=100)
    assert env.sync()["status"] == "done"
    env.emulator.clear_requests()
    alice = env.oid("alice")
    env.emulator.patch_user(env.tid, alice, jobTitle="Director", userPrincipalName=f"alice.a@{env.domain}")
    env.emulator.delete_user(env.tid, env.oid("bob"))
    env.add_user("erin", "Erin", "Evans", department="Support")
    result = env.sync()
    assert result["status"] == "done", result
    assert result["message"].startswith("Incremental")
    assert (result["counts"]["created"], result["counts"]["updated"], result["counts"]["disabled"]) == (1, 1, 1)
    delta_calls = [e for e in env.emulator.requests_log() if "/users/delta" in e["path"]]
    assert delta_calls and all("deltatoken" in (e["query"] + e["path"]).lower() for e in delta_calls)
    users = {u["m365_object_id"]: u for u in env.pbx_users() if u["m365_object_id"]}
    assert len(users) == 5  # a UPN change updates the user, never creates a second one
    assert users[alice]["job_title"] == "Director" and users[alice]["email"] == f"alice@{env.domain}"
    bob_oid = next(i["object_id"] for i in env.items(result["run_id"], "disabled"))
    assert users[bob_oid]["enabled"] is False
    env.emulator.restore_user(env.tid, bob_oid)
    result = env.sync()
    assert result["status"] == "done" and result["counts"]["updated"] == 1
    assert {u["m365_object_id"]: u for u in env.pbx_users()}[bob_oid]["enabled"] is True
    assert len([u for u in env.pbx_users() if u["m365_object_id"]]) == 5
    assert env.sync()["counts"] == dict.fromkeys(result["counts"], 0)  # nothing changed: nothing written


def test_disabled_account_follows_policy_and_comes_back(env):
    env.settings(guard_percent=100)
    env.sync()
    env.emulator.patch_user(env.tid, env.oid("carol"), accountEnabled=False)
    result = env.sync()
    assert result["counts"]["disabled"] == 1
    assert env.synced()["carol"]["enabled"] is False
    env.emulator.patch_user(env.tid, env.oid("carol"), accountEnabled=True)
    env.sync()
    assert env.synced()["carol"]["enabled"] is True


def test_delete_policy_waits_the_configured_days(env):
    from flask_pbx365.models import UserLink
    from flask_pbx365.state import get_state

    env.settings(guard_percent=100, deprovision="delete", delete_after_days=30)
    env.sync()
    carol = env.oid("carol")
    env.emulator.delete_user(env.tid, carol)
    result = env.sync()
    assert (result["counts"]["disabled"], result["counts"]["deleted"]) == (1, 0)
    assert env.synced()["carol"]["enabled"] is False
    assert env.sync()["counts"]["deleted"] == 0  # still inside the 30 days
    with env.app.app_context():
        link = get_state().db.session.query(UserLink).filter_by(object_id=carol).one()
        link.disabled_at -= timedelta(days=31)
        get_state().db.session.commit()
    result = env.sync()
    assert result["counts"]["deleted"] == 1
    assert "carol" not in env.synced()
    assert all(u["email"] != f"carol@{env.domain}" for u in env.pbx_users())


def test_keep_policy_leaves_users_alone(env):
    env.settings(guard_percent=100, deprovision="keep")
    env.sync()
    env.emulator.delete_user(env.tid, env.oid("carol"))
    result = env.sync()
    assert result["counts"]["disabled"] == result["counts"]["deleted"] == 0
    assert env.synced()["carol"]["enabled"] is True


def test_existing_pbx_user_is_linked_not_duplicated_and_preview_shows_it(env):
    env.create_pbx_user("carol.local", email=f"carol@{env.domain}", extension="555")
    preview = env.sync(dry_run=True)
    assert preview["status"] == "done" and preview["counts"]["linked"] == 1
    linked = env.items(preview["run_id"], "linked")
    assert linked[0]["extension"] == "555" and "carol.local@acme" in linked[0]["detail"]
    assert not env.synced()  # the dry run changed nothing
    assert env.sync()["counts"]["linked"] == 1
    carols = [u for u in env.pbx_users() if u["email"] == f"carol@{env.domain}"]
    assert len(carols) == 1 and carols[0]["extension"] == "555" and carols[0]["m365_object_id"] == env.oid("carol")
    assert carols[0]["last_name"] == "Clark"


def test_linking_can_be_turned_off(env):
    env.create_pbx_user("carol.local", email=f"carol@{env.domain}", extension="555")
    env.settings(link_existing=False)
    result = env.sync()
    assert result["counts"]["linked"] == 0 and result["counts"]["created"] == 4
    assert len([u for u in env.pbx_users() if u["email"] == f"carol@{env.domain}"]) == 2


def test_dry_run_shows_the_exact_plan(env):
    env.settings(start_extension="2000")
    preview = env.sync(dry_run=True)
    planned = {i["user_principal_name"].split("@")[0]: i["extension"] for i in env.items(preview["run_id"], "created")}
    assert not env.synced()
    env.sync()
    assert {name: u["extension"] for name, u in env.synced().items()} == planned


def test_more_than_999_users_are_paged(empty_env):
    empty_env.emulator.generate(tenantId=empty_env.tid, users=1200, contactsPerUser=0, eventsPerUser=0,
                                photos=False, seed=11)
    connect(empty_env.app, empty_env.emulator, empty_env.tid)  # generating replaced the tenant and its app
    expected = [u for u in empty_env.entra_users() if (u.get("userType") or "Member") == "Member"
                and u.get("accountEnabled", True) and (u.get("givenName") or u.get("surname"))]
    assert len(expected) > 999
    empty_env.settings(guard_percent=100)
    result = empty_env.sync()
    assert result["status"] == "done", result["message"]
    assert result["progress"]["pages"] >= 2
    synced = [u for u in empty_env.pbx_users() if u["m365_object_id"]]
    assert len(synced) == len(expected)
    assert len({u["extension"] for u in synced}) == len(synced)
    with empty_env.app.app_context():
        db = empty_env.app.extensions["pbx365"].db
        if db.engine.dialect.name == "postgresql":
            # The tables the run grew were re-analysed as they grew (the batches' IN lookups plan on them):
            # the links by the engine, the PBX's users by the demo host.
            analysed = dict(db.session.execute(sa.text(
                "SELECT relname, analyze_count FROM pg_stat_user_tables "
                "WHERE relname IN ('pbx365_user_link', 'users')")).all())
            assert analysed.get("pbx365_user_link", 0) >= 1 and analysed.get("users", 0) >= 1, analysed


def test_a_first_sync_that_fails_on_page_two_keeps_page_one_and_the_next_run_completes(empty_env):
    """A first sync cannot be held (nobody is linked yet), so it applies each page as it arrives: a read that
    fails on page 2 leaves page 1 applied whole, says so, and the next run converges without duplicates."""
    env = empty_env
    env.emulator.generate(tenantId=env.tid, users=1500, contactsPerUser=0, eventsPerUser=0, photos=False, seed=5)
    connect(env.app, env.emulator, env.tid)
    expected = {u["id"] for u in env.entra_users() if (u.get("userType") or "Member") == "Member"
                and u.get("accountEnabled", True) and (u.get("givenName") or u.get("surname"))}
    env.emulator.add_fault(path=r"/v1\.0/users\?.*skiptoken", times=10, status=503)
    failed = env.sync()
    assert failed["status"] == "failed"
    applied = [u for u in env.pbx_users() if u["m365_object_id"]]
    assert 0 < len(applied) < len(expected) and failed["counts"]["created"] == len(applied)
    assert "after 999 users" in failed["message"] and f"{len(applied)} created" in failed["message"]
    assert "nobody was disabled or deleted" in failed["message"]
    env.emulator.clear_faults()
    result = env.sync()
    assert result["status"] == "done", result["message"]
    synced = [u for u in env.pbx_users() if u["m365_object_id"]]
    assert {u["m365_object_id"] for u in synced} == expected and len(synced) == len(expected)
    assert len({u["extension"] for u in synced}) == len(synced)
    assert result["counts"]["created"] == len(expected) - len(applied)


@pytest.mark.parametrize("region,phone,expected", [
    ("US", "(425) 555-0102", "+14255550102"),
    ("DE", "030 1234567", "+49301234567"),
    ("US", "+44 20 7946 0958", "+442079460958"),
    ("US", "12", None),
])
def test_office_phone_becomes_e164_caller_id(empty_env, region, phone, expected):
    empty_env.add_user("pat", "Pat", "Smith", businessPhones=[phone])
    empty_env.settings(caller_id_from_office_phone=True, default_region=region)
    result = empty_env.sync()
    assert empty_env.synced()["pat"]["caller_id"] == expected
    if expected is None:
        assert "not a valid number" in env_detail(empty_env, result)


def env_detail(env, result) -> str:
    return " ".join(i["detail"] for i in env.items(result["run_id"]))


def test_extension_group_is_configurable_and_moves_users(env):
    env.settings(extension_group="Entra users")
    env.sync()
    assert env.synced()["alice"]["groups"] == ["Entra users"]
    env.settings(extension_group="Phones")
    result = env.sync()
    assert result["message"].startswith("Full sync (filters or mapped fields changed)")
    assert env.synced()["alice"]["groups"] == ["Phones"]


def test_write_back_puts_the_extension_in_the_business_phone(env):
    env.settings(write_back_phone=True)
    env.sync()
    ext = env.synced()["carol"]["extension"]
    carol = next(u for u in env.entra_users() if u["id"] == env.oid("carol"))
    assert carol["businessPhones"] == [ext]
    patches = [e for e in env.emulator.requests_log() if e["method"] == "PATCH"]
    env.emulator.clear_requests()
    env.sync()  # the written phone comes back through delta: not written again
    assert patches and not [e for e in env.emulator.requests_log() if e["method"] == "PATCH"]


def test_a_refused_write_back_for_an_admin_is_one_error_and_blocks_no_deprovisioning(env):
    env.settings(write_back_phone=True, guard_percent=100)
    first = env.sync()
    assert first["status"] == "done", first["message"]
    admin = env.oid("admin")
    errors = env.items(first["run_id"], "error")
    assert [e["object_id"] for e in errors] == [admin]
    assert "privileged admin: Microsoft does not allow app-only phone updates" in errors[0]["detail"]
    carol = next(u for u in env.entra_users() if u["id"] == env.oid("carol"))
    assert carol["businessPhones"] == [env.synced()["carol"]["extension"]]  # the others were written
    env.emulator.delete_user(env.tid, env.oid("bob"))
    env.emulator.reset_delta(env.tid)  # a full round: every user is considered again
    env.emulator.clear_requests()
    second = env.sync()
    assert second["status"] == "done" and second["counts"]["disabled"] == 1, second
    assert not env.synced()["bob"]["enabled"]
    patched = [e["path"] for e in env.emulator.requests_log() if e["method"] == "PATCH"]
    assert not any(admin in p for p in patched), "the refused write-back was tried again"
