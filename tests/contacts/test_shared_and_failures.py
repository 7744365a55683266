"""Shared mailboxes → company phonebook; clouds without contact delta; Graph errors; dry runs; permissions."""
from __future__ import annotations

import pytest

from .conftest import make_env


def _nonzero(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if v}


def test_shared_mailboxes_fill_the_company_phonebook_and_only_shared_ones_count(cenv):
    env = cenv
    reception = f"reception@{env.domain}"
    folder = env.add_folder("reception", "Suppliers")
    env.add_contact("reception", "Acme Plumbing", folder=folder, businessPhones=["+1 555 0300"],
                    companyName="Acme Plumbing Inc.")
    env.add_contact("reception", "Taxi Central", mobilePhone="+1 555 0301")
    env.add_contact("carol", "Carol's Friend", mobilePhone="+1 555 0302")
    seeded = set(env.company())   # entries the PBX admin made (demo seed data)
    assert seeded
    env.contacts_settings(shared_mailboxes=[reception, f"carol@{env.domain}", f"nobody@{env.domain}"])

    run = env.sync_contacts()
    assert run["status"] == "failed" and _nonzero(run["counts"]) == {"created": 2, "errors": 2}, run
    company = env.company()
    assert set(company) == seeded | {"Acme Plumbing", "Taxi Central"}
    assert company["Acme Plumbing"]["source"] == reception
    assert company["Acme Plumbing"]["company"] == "Acme Plumbing Inc."
    errors = {i["user_principal_name"]: i["detail"] for i in env.items(run["run_id"], "error")}
    assert "not a shared mailbox" in errors[f"carol@{env.domain}"]
    assert "not a mailbox in this Microsoft 365 tenant" in errors[f"nobody@{env.domain}"]
    assert f"carol@{env.domain}" in run["message"]

    env.contacts_settings(shared_mailboxes=[reception.upper()])   # the same mailbox, typed differently
    same = env.sync_contacts()
    assert same["status"] == "done" and not any(same["counts"].values()), same
    assert env.company() == company

    env.contacts_settings(shared_mailboxes=[])   # removing the mailbox removes what it brought
    cleaned = env.sync_contacts()
    assert cleaned["status"] == "done" and _nonzero(cleaned["counts"]) == {"deleted": 2}, cleaned
    assert set(env.company()) == seeded


def test_a_graph_error_on_one_mailbox_deletes_nothing_there(cenv):
    env = cenv
    env.contacts_settings(personal=True)
    a = env.add_contact("alice", "Al Pha", mobilePhone="+1 555 0401")
    b = env.add_contact("bob", "Bo Ta", mobilePhone="+1 555 0402")
    assert env.sync_contacts()["counts"]["created"] == 2
    env.delete_contact("alice", a)
    env.delete_contact("bob", b)
    env.emulator.add_fault(path=rf"/users/{env.ids['bob']}/contact[fF]olders", status=500, times=20)
    run = env.sync_contacts()
    assert run["status"] == "failed" and _nonzero(run["counts"]) == {"deleted": 1, "errors": 1}, run
    [error] = env.items(run["run_id"], "error")
    assert error["user_principal_name"] == f"bob@{env.domain}" and "HTTP 500" in error["detail"]
    assert error["extension"] == env.extension("bob")
    assert set(env.personal("bob")) == {"Bo Ta"} and set(env.personal("alice")) == set()
    env.emulator.clear_faults()
    healed = env.sync_contacts()
    assert healed["status"] == "done" and _nonzero(healed["counts"]) == {"deleted": 1}
    assert set(env.personal("bob")) == set()


def test_cloud_without_contact_delta_reads_in_full_and_diffs(app, m365_emulator, redis_conn):
    env = make_env(app, m365_emulator, cloud="china")
    env.contacts_settings(personal=True)
    keep = env.add_contact("alice", "Li Lei", mobilePhone="+86 10 5555 0101")
    drop = env.add_contact("alice", "Han Meimei", mobilePhone="+86 10 5555 0102")
    first = env.sync_contacts()
    assert first["status"] == "done" and first["counts"]["created"] == 2, first
    assert "offers no contact delta" in first["message"]
    env.delete_contact("alice", drop)
    env.patch_contact("alice", keep, mobilePhone="+86 10 5555 0199")
    m365_emulator.clear_requests()
    second = env.sync_contacts()
    assert _nonzero(second["counts"]) == {"updated": 1, "deleted": 1}, second
    assert env.personal("alice")["Li Lei"]["phones"]["mobile"] == ["+86 10 5555 0199"]
    paths = [r["path"] for r in m365_emulator.requests_log() if "/contacts" in r["path"]]
    assert paths and sum("/delta" in p for p in paths) <= 1, paths  # one 501 probe per run at most


def test_dry_run_shows_the_plan_and_changes_nothing(cenv):
    env = cenv
    env.contacts_settings(personal=True)
    env.add_contact("alice", "Dry Dora", mobilePhone="+1 555 0501")
    preview = env.sync_contacts(dry_run=True)
    assert preview["status"] == "done" and preview["counts"]["created"] == 1
    assert preview["message"].startswith("Dry run, nothing was changed.")
    [item] = env.items(preview["run_id"], "created")
    assert item["display_name"] == "Dry Dora" and "dry run" in item["detail"]
    assert env.personal("alice") == {}
    assert env.sync_contacts()["counts"]["created"] == 1   # the real run still does the work
    assert set(env.personal("alice")) == {"Dry Dora"}


@pytest.mark.parametrize("granted, missing", [(["User.Read.All"], "Contacts.Read"),
                                              (["User.Read.All", "Contacts.Read"], "MailboxSettings.Read")])
def test_missing_permission_fails_with_the_permission_to_add(app, m365_emulator, redis_conn, granted, missing):
    env = make_env(app, m365_emulator, permissions=granted)
    env.add_contact("alice", "Perm Pete", mobilePhone="+1 555 0601")
    personal = missing == "Contacts.Read"
    env.contacts_settings(personal=personal, shared_mailboxes=[] if personal else [f"reception@{env.domain}"])
    run = env.sync_contacts()
    assert run["status"] == "failed" and run["counts"]["created"] == 0, run
    assert missing in run["message"]
    [error] = env.items(run["run_id"], "error")   # one error, not one per mailbox
    assert missing in error["detail"]
    assert env.personal("alice") == {}
