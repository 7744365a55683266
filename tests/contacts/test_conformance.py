"""Every request contacts sync sends resolves in Microsoft's v1.0 CSDL (paths and ``$select``) and succeeds."""
from __future__ import annotations

from urllib.parse import parse_qs

from flask_pbx365.emulator import csdl


def test_contacts_requests_exist_in_the_csdl(cenv):
    env = cenv
    folder = env.add_folder("alice", "Team")
    env.add_folder("alice", "Sub", parent=folder)
    env.add_contact("alice", "Csdl Carl", folder=folder, mobilePhone="+1 555 1001")
    env.add_contact("reception", "Csdl Cora", mobilePhone="+1 555 1002")
    env.contacts_settings(personal=True, shared_mailboxes=[f"reception@{env.domain}"])
    env.emulator.clear_requests()
    assert env.sync_contacts()["status"] == "done"
    env.add_contact("alice", "Csdl Cleo", mobilePhone="+1 555 1003")
    assert env.sync_contacts()["counts"]["created"] == 1

    # $batch itself is no resource; its sub-requests are logged (and checked) one by one.
    sent = [r for r in env.emulator.requests_log() if r["path"].startswith("/v1.0/") and r["path"] != "/v1.0/$batch"]
    assert {r["status"] for r in sent} == {200}, [r for r in sent if r["status"] != 200]
    kinds = {r["path"].rsplit("/", 1)[-1] for r in sent}
    assert {"contactFolders", "childFolders", "delta", "userPurpose"} <= kinds, kinds
    schema = csdl.schema()
    for request in sent:
        type_name = schema.resolve_path(request["path"])  # KeyError for a path Graph does not have
        select = parse_qs(request.get("query") or "").get("$select")
        if select:
            entity = type_name[11:-1] if type_name.startswith("Collection(") else type_name
            members = {**schema.properties(entity), **schema.navigation(entity)}
            for prop in select[0].split(","):
                assert prop in members, f"{request['method']} {request['path']}: $select={prop} not in {entity}"
