"""Each tab where a run or a request failed opens with an error panel that says what failed and names the fix."""
from __future__ import annotations

import re
from html import unescape

from tests.conftest import csrf_from
from tests.contacts.conftest import cenv  # noqa: F401  (the fixture)
from tests.sync.conftest import env  # noqa: F401  (the fixture)

BASE = "/admin/integrations/microsoft365"


def _panels(client, tab: str) -> dict[str, str]:
    html = client.get(f"{BASE}/{tab}").get_data(as_text=True)
    return {m.group(1): unescape(re.sub(r"<[^>]+>", "", re.sub(r"\s+", " ", m.group(2)))) for m in
            re.finditer(r'<div class="msg error" role="alert" data-problem="([^"]+)">(.*?)</div>', html, re.S)}


def _connection_id(app) -> str:
    from flask_pbx365.tenants import find_config

    with app.app_context():
        return find_config("acme").client_id


def test_a_user_sync_microsoft_did_not_answer_says_the_next_run_retries(env, admin_client):  # noqa: F811
    assert _panels(admin_client, "user-sync") == {}
    env.emulator.add_fault(path="/v1.0/users", times=50, status=503)
    assert env.sync()["status"] == "failed"
    env.emulator.clear_faults()
    panels = _panels(admin_client, "user-sync")
    assert list(panels) == ["runs:users"]
    assert "The last run failed" in panels["runs:users"] and "the next run tries again" in panels["runs:users"]
    assert _panels(admin_client, "contacts") == {}  # only the tab where the fix is made
    assert env.sync()["status"] == "done"
    assert _panels(admin_client, "user-sync") == {}  # gone once a run succeeds


def test_a_revoked_permission_names_the_permission_to_grant(env, admin_client):  # noqa: F811
    assert env.sync()["status"] == "done"
    env.emulator.patch_application(env.tid, _connection_id(env.app), permissions=["GroupMember.Read.All"])
    run = env.sync()
    assert run["status"] == "failed", run
    panel = _panels(admin_client, "user-sync")["runs:users"]
    assert "Grant admin consent for User.Read" in panel, panel


def test_a_contact_sync_without_contacts_read_names_the_permission(cenv, admin_client):  # noqa: F811
    cenv.contacts_settings(personal=True)
    cenv.emulator.patch_application(cenv.tid, _connection_id(cenv.app),
                                    permissions=["User.Read.All", "MailboxSettings.Read"])
    run = cenv.sync_contacts()
    assert run["status"] == "failed", run
    panel = _panels(admin_client, "contacts")["runs:contacts"]
    assert "What to do: Grant admin consent for Contacts.Read" in panel, panel


def test_a_broken_certificate_shows_on_the_configure_tab_with_its_fix(env, admin_client):  # noqa: F811
    from flask_pbx365.testing import make_certificate

    env.emulator.patch_application(env.tid, _connection_id(env.app),
                                   certificates=[make_certificate().certificate_pem])
    html = admin_client.get(BASE + "/configure").get_data(as_text=True)
    admin_client.post(BASE + "/configure/test-connection",
                      data={"csrf_token": csrf_from(html, "/configure/test-connection")})
    panel = _panels(admin_client, "configure")["connection"]
    assert "AADSTS700027" in panel and "upload the active key pair's public_key.pem" in panel
