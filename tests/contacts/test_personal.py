"""Personal contacts → each synced user's personal phonebook: full, then incremental, one way."""
from __future__ import annotations

import re
import uuid


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


def test_an_unchanged_round_reads_twenty_mailboxes_per_request_and_a_change_still_lands(app, m365_emulator,
                                                                                           redis_conn):
    """Mailboxes of the usual shape (no folder below the default one) are read together through ``$batch``: an
    unchanged round costs two HTTP requests per 20 mailboxes; one with child folders is read alone."""
    from tests.sync.conftest import SyncEnv, connect

    from .conftest import PERMISSIONS, ContactsEnv

    tid = str(uuid.uuid4())
    m365_emulator.generate(tenantId=tid, users=70, contactsPerUser=2, eventsPerUser=0, photos=False, seed=7)
    app.config.update(PBX365_MAX_RETRIES=1, PBX365_MAX_BACKOFF=0.05, PBX365_HTTP_TIMEOUT=10)
    connect(app, m365_emulator, tid, permissions=PERMISSIONS)
    sync = SyncEnv(app, m365_emulator, tid, "")
    sync.settings(guard_percent=100)
    assert sync.sync()["status"] == "done"
    env = ContactsEnv(app, m365_emulator, tid, "")
    linked = sorted(u["m365_object_id"] for u in env.pbx_users() if u["m365_object_id"])
    assert len(linked) > 40
    folder = m365_emulator.admin("POST", f"/tenants/{tid}/users/{linked[0]}/contactFolders",
                                 {"displayName": "Suppliers"})["id"]
    m365_emulator.admin("POST", f"/tenants/{tid}/users/{linked[0]}/contacts",
                        {"displayName": "Sue Supplier", "mobilePhone": "+1 425 555 0177", "parentFolderId": folder})
    env.contacts_settings(personal=True)
    first = env.sync_contacts()
    assert first["status"] == "done" and first["counts"]["created"] == 2 * len(linked) + 1, first

    m365_emulator.clear_requests()
    again = env.sync_contacts()
    assert again["status"] == "done" and not any(again["counts"].values()), again
    log = [r for r in m365_emulator.requests_log() if r["path"].startswith("/v1.0/")]
    batches = sum(r["path"] == "/v1.0/$batch" for r in log)
    plain = len(linked) - 1
    assert 0 < batches <= 2 * -(-plain // 20), batches
    # Each plain mailbox: its folders and its folder's delta, as $batch items; the one with a child folder alone.
    assert len(log) - batches <= 2 * plain + 6, len(log) - batches

    m365_emulator.admin("POST", f"/tenants/{tid}/users/{linked[-1]}/contacts",
                        {"displayName": "Late Larry", "mobilePhone": "+1 425 555 0188"})
    third = env.sync_contacts()
    assert {k: v for k, v in third["counts"].items() if v} == {"created": 1}, third
    owner = next(u for u in env.pbx_users() if u["m365_object_id"] == linked[-1])
    names = {c["name"] for c in env.api(f"/users/{owner['extension']}/contacts")}
    assert "Late Larry" in names
