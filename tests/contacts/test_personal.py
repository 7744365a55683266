"""Personal contacts → each synced user's personal phonebook: full, then incremental, one way."""
from __future__ import annotations

import re


def _contact_reads(log: list[dict]) -> list[str]:
    return [r["path"] + ("?" + r["query"] if r.get("query") else "") for r in log
            if re.search(r"/contact[fF]olders/[^/]+/contacts", r["path"])]


def test_all_folders_then_only_changes_and_user_entries_untouched(cenv):
    env = cenv
    work = env.add_folder("alice", "Work")
    vendors = env.add_folder("alice", "Vendors", parent=work)
    kept = env.add_contact("alice", "Dan Default", businessPhones=["+1 425 555 0100", " "], mobilePhone="+1 206 555 0100",
                           homePhones=["+1 206 555 0199"], companyName="Contoso",
                           emailAddresses=[{"address": "dan@contoso.example", "name": "Dan"}])
    gone = env.add_contact("alice", "Wendy Work", folder=work, mobilePhone="+49 30 1234567")
    moved = env.add_contact("alice", "Victor Vendor", folder=vendors, businessPhones=["+33 1 23 45 67 89"])
    env.add_contact("bob", "Bea Bobsfriend", mobilePhone="+1 555 0142")
    env.api(f"/users/{env.extension('alice')}/contacts", "POST",
            {"name": "Mom", "phones": {"mobile": ["+1 555 0000"]}})
    env.contacts_settings(personal=True)

    first = env.sync_contacts()
    assert first["status"] == "done", first["message"]
    assert first["counts"]["created"] == 4 and first["counts"]["errors"] == 0
    alice = env.personal("alice")
    assert set(alice) == {"Dan Default", "Wendy Work", "Victor Vendor", "Mom"}
    assert alice["Dan Default"] == {
        "name": "Dan Default", "company": "Contoso", "source": "microsoft365", "emails": ["dan@contoso.example"],
        "phones": {"business": ["+1 425 555 0100"], "mobile": ["+1 206 555 0100"], "home": ["+1 206 555 0199"]}}
    assert alice["Mom"]["source"] == "user"
    assert set(env.personal("bob")) == {"Bea Bobsfriend"}

    # Changes in Outlook: an update, a deletion, a new contact, a move between folders.
    env.emulator.clear_requests()
    env.patch_contact("alice", kept, mobilePhone="+1 206 555 0111")
    env.delete_contact("alice", gone)
    env.add_contact("alice", "Nina New", folder=vendors, emailAddresses=[{"address": "nina@x.example"}])
    env.patch_contact("alice", moved, parentFolderId=work)
    second = env.sync_contacts()
    assert second["status"] == "done", second["message"]
    assert {k: v for k, v in second["counts"].items() if v} == {"created": 1, "updated": 1, "deleted": 1}
    alice = env.personal("alice")
    assert set(alice) == {"Dan Default", "Victor Vendor", "Nina New", "Mom"}
    assert alice["Dan Default"]["phones"]["mobile"] == ["+1 206 555 0111"]
    reads = _contact_reads(env.emulator.requests_log())
    assert reads and all("/contacts/delta" in r and "deltatoken" in r.lower() for r in reads), reads

    third = env.sync_contacts()
    assert third["status"] == "done" and not any(third["counts"].values()), third
    assert "read in full: 0, incrementally (delta): 4" in third["message"]  # alice 3 folders, bob 1


def test_deleted_folder_and_emptied_contact_leave_the_phonebook(cenv):
    env = cenv
    folder = env.add_folder("alice", "Old project")
    env.add_contact("alice", "Pat Project", folder=folder, businessPhones=["+1 555 0101"])
    emptied = env.add_contact("alice", "Eve Empty", businessPhones=["+1 555 0102"])
    env.add_contact("alice", "Nora Nonumber")
    env.contacts_settings(personal=True)
    first = env.sync_contacts()
    assert first["counts"]["created"] == 2 and first["counts"]["skipped"] == 1
    skipped = env.items(first["run_id"], "skipped")
    assert [i["display_name"] for i in skipped] == ["Nora Nonumber"] and "nothing to dial" in skipped[0]["detail"]

    env.delete_folder("alice", folder)
    env.patch_contact("alice", emptied, businessPhones=[])
    second = env.sync_contacts()
    assert second["counts"]["deleted"] == 2, second
    assert set(env.personal("alice")) == set()


def test_entries_removed_in_the_pbx_come_back_and_expired_tokens_resync(cenv):
    from demo_app.models import PersonalContact, db

    env = cenv
    ids = [env.add_contact("alice", f"Person {i:02d}", mobilePhone=f"+1 555 01{i:02d}")
           for i in range(12)]  # more than one emulator page
    env.contacts_settings(personal=True)
    assert env.sync_contacts()["counts"]["created"] == 12
    with env.app.app_context():  # someone deletes synced entries behind the sync's back
        db.session.query(PersonalContact).filter(PersonalContact.name.in_(["Person 03", "Person 07"])).delete()
        db.session.commit()
    repaired = env.sync_contacts()
    assert {k: v for k, v in repaired["counts"].items() if v} == {"created": 2}
    assert len(env.personal("alice")) == 12

    env.emulator.reset_delta(env.tid)   # every stored delta token is now expired (410 SyncStateNotFound)
    env.delete_contact("alice", ids[5])
    env.patch_contact("alice", ids[6], displayName="Person Six")
    again = env.sync_contacts()
    assert again["status"] == "done", again["message"]
    assert {k: v for k, v in again["counts"].items() if v} == {"deleted": 1, "updated": 1}
    assert "read in full: 1, incrementally (delta): 0" in again["message"]  # bob has no contacts
    names = set(env.personal("alice"))
    assert len(names) == 11 and "Person Six" in names and "Person 05" not in names


def test_turning_personal_contacts_off_removes_only_synced_entries(cenv):
    env = cenv
    env.add_contact("alice", "Synced Sam", mobilePhone="+1 555 0701")
    env.api(f"/users/{env.extension('alice')}/contacts", "POST", {"name": "Own Olga", "phones": {"home": ["123"]}})
    env.contacts_settings(personal=True)
    assert env.sync_contacts()["counts"]["created"] == 1
    env.contacts_settings(personal=False)
    off = env.sync_contacts()
    assert off["status"] == "done" and {k: v for k, v in off["counts"].items() if v} == {"deleted": 1}, off
    [item] = env.items(off["run_id"], "deleted")
    assert item["display_name"] == "Synced Sam" and "turned off" in item["detail"]
    assert set(env.personal("alice")) == {"Own Olga"}
    assert not any(env.sync_contacts()["counts"].values())
