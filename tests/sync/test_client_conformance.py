"""Every request path and ``$select`` the extension sends to Graph resolves in Microsoft's v1.0 CSDL.

The requests are the real ones: a connection test and user syncs with every option that changes what is read
(group filter, photos, write-back), collected from the emulator's request log.
"""
from __future__ import annotations

from urllib.parse import parse_qs

from flask_pbx365.emulator import csdl


def test_paths_and_selects_exist_in_the_csdl(env):
    env.emulator.clear_requests()
    result = env.app.test_cli_runner().invoke(args=["pbx365", "test-connection", "acme", "--json"])
    assert result.exit_code == 0, result.output
    everyone = _group_id(env, "Everyone")
    env.settings(photos=True, write_back_phone=True, caller_id_from_office_phone=True, groups=[everyone])
    assert env.sync()["status"] == "done"
    env.emulator.patch_user(env.tid, env.oid("alice"), jobTitle="Head of Sales")
    assert env.sync()["status"] == "done"

    sent = [r for r in env.emulator.requests_log() if r["path"].startswith("/v1.0/") and r["path"] != "/v1.0/$batch"]
    assert len({r["path"].split("/")[2] for r in sent}) >= 2  # users and groups at least
    schema = csdl.schema()
    for request in sent:
        type_name = schema.resolve_path(request["path"])  # raises KeyError for a path Graph does not have
        select = parse_qs(request.get("query") or "").get("$select")
        if select:
            entity = type_name[11:-1] if type_name.startswith("Collection(") else type_name
            members = {**schema.properties(entity), **schema.navigation(entity)}
            for prop in select[0].split(","):
                assert prop in members, f"{request['method']} {request['path']}: $select={prop} not in {entity}"


def _group_id(env, name: str) -> str:
    from flask_pbx365.connection import client_options, credentials_for
    from flask_pbx365.graph.client import GraphClient

    with env.app.app_context():
        creds, options = credentials_for(env.tenant), client_options()
    with GraphClient(creds, **options) as client:
        return next(g["id"] for g in client.iter_items("/groups") if g["displayName"] == name)
