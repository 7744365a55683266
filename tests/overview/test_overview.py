"""The Overview tab: first and the landing page, one health line per concern with its fix, the same health in
``status --json``, and the subscriptions with their actions."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from tests.conftest import csrf_from
from tests.sync.conftest import PERMISSIONS
from tests.sync.conftest import env  # noqa: F401  (the fixture)

BASE = "/admin/integrations/microsoft365"


def _lines(html: str) -> dict[str, tuple[str, str]]:
    table = html.split('id="pbx365-health"')[1].split("</table>")[0]
    out = {}
    for row in table.split("<tr data-check=")[1:]:
        name = row.split('"')[1]
        state = row.split('data-state="')[1].split('"')[0]
        out[name] = (state, row)
    return out


def _health(app) -> dict:
    result = app.test_cli_runner().invoke(args=["pbx365", "status", "acme", "--json"])
    return json.loads(result.output)["health"]


def test_overview_is_the_first_tab_and_the_landing_page(admin_client):
    answer = admin_client.get(BASE + "/")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/overview")
    html = admin_client.get(BASE + "/overview").get_data(as_text=True)
    nav = html.split('id="pbx365-health"')[0]
    assert nav.index("Overview") < nav.index("Configure")


def test_an_unconnected_tenant_is_told_what_to_do(app, admin_client):
    html = admin_client.get(BASE + "/overview").get_data(as_text=True)
    lines = _lines(html)
    state, row = lines["connection"]
    assert state == "error" and "application (client) ID" in row and f"{BASE}/configure" in row
    assert lines["certificate"][0] == "error"
    health = _health(app)
    assert health["state"] == "error"
    check = health["checks"][0]
    assert set(check) == {"name", "label", "state", "summary", "fix", "link", "details"}
    assert {c["name"] for c in health["checks"]} >= {"connection", "permissions", "certificate", "redirect_uris",
                                                      "runs:users", "runs:contacts", "runs:presence",
                                                      "runs:teams_presence", "notifications"}


def test_a_healthy_tenant_turns_green_and_a_missing_permission_names_its_fix(env, admin_client):
    html = admin_client.get(BASE + "/overview").get_data(as_text=True)
    assert _lines(html)["connection"][0] == "warning"  # not tested yet: the page never calls Microsoft itself
    admin_client.post(BASE + "/overview/check", data={"csrf_token": csrf_from(html, "/overview/check")})
    lines = _lines(admin_client.get(BASE + "/overview").get_data(as_text=True))
    assert lines["connection"][0] == "ok" and lines["permissions"][0] == "ok" and lines["certificate"][0] == "ok"
    from flask_pbx365.settings import import_settings

    with env.app.app_context():
        import_settings("acme", {"contacts": {"personal": True}})
    html = admin_client.get(BASE + "/overview").get_data(as_text=True)
    admin_client.post(BASE + "/overview/check", data={"csrf_token": csrf_from(html, "/overview/check")})
    state, row = _lines(admin_client.get(BASE + "/overview").get_data(as_text=True))["permissions"]
    assert state == "error" and "Grant admin consent for Contacts.Read" in row
    env.emulator.patch_application(env.tid, connect_app_id(env), permissions=[*PERMISSIONS, "Contacts.Read"])
    html = admin_client.get(BASE + "/overview").get_data(as_text=True)
    admin_client.post(BASE + "/overview/check", data={"csrf_token": csrf_from(html, "/overview/check")})
    assert _lines(admin_client.get(BASE + "/overview").get_data(as_text=True))["permissions"][0] == "ok"


def connect_app_id(env) -> str:
    with env.app.app_context():
        from flask_pbx365.tenants import find_config

        return find_config("acme").client_id


def test_a_broken_certificate_shows_the_aadsts_code(env, admin_client):
    from flask_pbx365.testing import make_certificate

    env.emulator.patch_application(env.tid, connect_app_id(env), certificates=[make_certificate().certificate_pem])
    html = admin_client.get(BASE + "/overview").get_data(as_text=True)
    admin_client.post(BASE + "/overview/check", data={"csrf_token": csrf_from(html, "/overview/check")})
    state, row = _lines(admin_client.get(BASE + "/overview").get_data(as_text=True))["connection"]
    assert state == "error" and "<code>AADSTS" in row and "public_key.pem" in row
    check = next(c for c in _health(env.app)["checks"] if c["name"] == "connection")
    assert check["details"]["aadsts"].startswith("AADSTS")


def test_certificate_expiry_warns_then_errors(env):
    from flask_pbx365.models import KeyPair
    from flask_pbx365.state import get_state

    for days, expected in ((10, "warning"), (-1, "error")):
        with env.app.app_context():
            session = get_state().db.session
            session.execute(sa.update(KeyPair).where(KeyPair.tenant == "acme").values(
                not_after=datetime.now(timezone.utc) + timedelta(days=days, hours=1)))
            session.commit()
        check = next(c for c in _health(env.app)["checks"] if c["name"] == "certificate")
        assert check["state"] == expected, check
        assert "key pair" in check["fix"] and check["link"] == "pbx365_admin.configure"


def test_a_failed_run_and_a_held_run_show_with_their_fix(env):
    env.sync()
    env.emulator.add_fault(path="/v1.0/users", times=50, status=503)
    failed = env.sync()
    env.emulator.clear_faults()
    assert failed["status"] == "failed"
    check = next(c for c in _health(env.app)["checks"] if c["name"] == "runs:users")
    assert check["state"] == "error" and failed["message"][:40] in check["summary"]
    assert check["link"] == "pbx365_admin.user_sync"
    env.emulator.delete_user(env.tid, env.oid("carol"))
    held = env.sync()
    assert held["status"] == "waiting_confirmation", held
    check = next(c for c in _health(env.app)["checks"] if c["name"] == "runs:users")
    assert check["state"] == "warning" and "waiting for confirmation" in check["summary"]
    assert "confirm" in check["fix"]


def test_the_portal_not_reachable_from_the_internet_is_said(env):
    check = next(c for c in _health(env.app)["checks"] if c["name"] == "notifications")
    assert check["state"] == "warning" and "schedule keeps things in sync" in check["summary"]


def test_subscription_actions_need_an_admin_and_csrf(env, admin_client):
    from flask_pbx365.models import NotificationSubscription
    from flask_pbx365.state import get_state

    with env.app.app_context():
        session = get_state().db.session
        session.add(NotificationSubscription(id="sub-1", tenant="acme", kind="users", resource="users",
                                             notification_url="https://portal.test/n", client_state_hash="x",
                                             expires_at=datetime.now(timezone.utc) + timedelta(days=2)))
        session.commit()
    html = admin_client.get(BASE + "/overview").get_data(as_text=True)
    assert 'id="pbx365-subscriptions"' in html and "Renew" in html and "Recreate" in html
    assert admin_client.post(BASE + "/overview/subscriptions/sub-1/renew").status_code in (400, 403)
    assert env.app.test_client().post(BASE + "/overview/subscriptions/sub-1/renew").status_code in (302, 303, 403)
    answer = admin_client.post(BASE + "/overview/subscriptions/sub-1/renew",
                               data={"csrf_token": csrf_from(html, "/renew")}, follow_redirects=True)
    assert "no longer knows this subscription" in answer.get_data(as_text=True) or \
        "Renewing failed" in answer.get_data(as_text=True)


def test_features_switched_off_leave_no_tab_and_no_health_line(database_url, redis_url, tmp_path):
    from demo_app import create_app

    from tests.conftest import TEST_SECRET, login

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "t",
                      "PBX365_SECRET_KEY": TEST_SECRET, "PBX365_REDIS_URL": redis_url,
                      "DEMO_EMULATOR_URL": "https://127.0.0.1:9", "DEMO_PUBLIC_URL": "http://portal.test",
                      "DEMO_SBC_URL": "https://sbc.test:8444",
                      "PBX365_DISABLED_FEATURES": ["mail", "contacts", "teams_presence"]})
    assert app.test_cli_runner().invoke(args=["demo", "init"]).exit_code == 0
    client = app.test_client()
    login(client, "admin@acme", "admin")
    html = client.get(BASE + "/overview").get_data(as_text=True)
    assert "Teams presence" not in html.split('id="pbx365-health"')[0]
    with app.app_context():
        names = {c["name"] for c in _health(app)["checks"]}
    assert "runs:users" in names and "runs:contacts" not in names and "runs:teams_presence" not in names
    assert client.get(BASE + "/teams-presence").status_code == 404
