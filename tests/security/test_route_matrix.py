"""The security matrix: every admin route of the integration × every role, every POST × CSRF, and the headers of
every page the extension and the demo serve.

Roles: anonymous, a PBX user (web client), another tenant's admin, the tenant's admin, the system admin (in the
tenant's scope). Every URL names acme's own objects (its runs, mail, subscription, key pair), so "another tenant's
admin" is tried on real ids, not on ids that exist nowhere.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import csrf_from, login
from tests.sync.conftest import env  # noqa: F401  (the fixture)

BASE = "/admin/integrations/microsoft365"


@pytest.fixture
def acme_ids(env) -> dict[str, str]:  # noqa: F811
    """Ids of acme's objects for the routes' arguments: a run of each kind, a mail, a subscription, a key."""
    from flask_pbx365.host import MailMessage
    from flask_pbx365.keys import active_key_pair
    from flask_pbx365.mail.outbox import queue_message
    from flask_pbx365.models import NotificationSubscription
    from flask_pbx365.state import get_state

    from flask_pbx365.runs import request_run

    run = env.sync()
    with env.app.app_context():
        contacts_run = request_run("acme", "contacts").id
        session = get_state().db.session
        message = queue_message("acme", MailMessage(to=["x@example.com"], subject="s", body="b"), sender="a@b.c")
        session.add(NotificationSubscription(id="sub-acme", tenant="acme", kind="users", resource="users",
                                             notification_url="https://portal.test/n", client_state_hash="x",
                                             expires_at=datetime.now(timezone.utc) + timedelta(days=2)))
        session.commit()
        return {"run_id": run["run_id"], "contacts_run_id": contacts_run, "message_id": str(message.id), "subscription_id": "sub-acme",
                "sha256": active_key_pair("acme").sha256}


def _urls(app, ids: dict[str, str], method: str) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("pbx365_admin.") or method not in (rule.methods or ()):
            continue
        url = rule.rule
        for arg in rule.arguments:
            key = "contacts_run_id" if arg == "run_id" and "/contacts/" in url else arg
            url = re.sub(rf"<(?:\w+:)?{arg}>", ids[key], url)
        urls.append(url)
    return sorted(urls)


def _client(app, who: str | None):
    client = app.test_client()
    if who == "user":
        login(client, "alice@acme", "alice", page="/login")
    elif who == "sysadmin":
        login(client, "sysadmin", "sysadmin")
        token = csrf_from(client.get("/admin/tenants").get_data(as_text=True))
        assert client.post("/admin/tenants/acme/switch", data={"csrf_token": token}).status_code in (302, 303)
    elif who:
        login(client, who, "admin")
    return client


def _token(client) -> str:
    return csrf_from(client.get(BASE + "/overview").get_data(as_text=True), "microsoft365")


def test_every_admin_page_by_role(env, acme_ids):  # noqa: F811
    app = env.app
    gets = _urls(app, acme_ids, "GET")
    assert len(gets) >= 15
    clients = {who: _client(app, who) for who in (None, "user", "admin@globex", "admin@acme", "sysadmin")}
    outcome: dict[str, dict[str, int]] = {}
    for url in gets:
        outcome[url] = {str(who): clients[who].get(url).status_code for who in clients}
    for url, codes in outcome.items():
        assert codes["None"] == 302 and codes["user"] == 302, (url, codes)  # to the admin login page
        assert codes["admin@acme"] in (200, 302) and codes["sysadmin"] == codes["admin@acme"], (url, codes)
        names_acme_object = any(value in url for value in acme_ids.values())
        if names_acme_object:
            assert codes["admin@globex"] == 404, (url, codes)  # another tenant's object does not exist for them
        else:
            assert codes["admin@globex"] in (200, 302), (url, codes)  # their own tenant's page
    # What globex's admin sees is globex: none of acme's ids or its app registration appear.
    globex = clients["admin@globex"]
    for url in [u for u in gets if not any(v in u for v in acme_ids.values())]:
        html = globex.get(url).get_data(as_text=True)
        assert acme_ids["run_id"] not in html and acme_ids["sha256"] not in html, url
        assert env.tid not in html, url


def test_every_admin_post_by_role_and_csrf(env, acme_ids):  # noqa: F811
    from flask_pbx365.settings import export_settings

    app = env.app
    posts = _urls(app, acme_ids, "POST")
    assert len(posts) >= 12
    with app.app_context():
        before = export_settings("acme")
    for who in (None, "user"):
        client = _client(app, who)
        for url in posts:
            answer = client.post(url, data={"enabled": "on"})
            assert answer.status_code == 302 and "/admin/login" in answer.location, (who, url)
    for who in ("admin@globex", "admin@acme", "sysadmin"):
        client = _client(app, who)
        for url in posts:  # no token: refused before anything happens
            answer = client.post(url, data={"enabled": "on", "mode": "automatic"})
            assert answer.status_code == 400 and "CSRF" in answer.get_data(as_text=True), (who, url)
        if who == "admin@globex":
            token = _token(client)
            for url in posts:
                if any(value in url for value in acme_ids.values()):
                    assert client.post(url, data={"csrf_token": token}).status_code == 404, url
                else:  # their own tenant's forms: whatever they do leaves acme alone
                    client.post(url, data={"csrf_token": token, "enabled": "on", "mode": "automatic"})
    with app.app_context():
        assert export_settings("acme") == before


def test_every_page_of_the_extension_and_the_demo_sends_csp_with_frame_ancestors(env, acme_ids):  # noqa: F811
    app = env.app
    admin = _client(app, "admin@acme")
    user = _client(app, "user")
    anonymous = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint == "static" or rule.rule.startswith("/api/"):
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = re.sub(rf"<(?:\w+:)?{arg}>", acme_ids.get(arg, "acme" if arg in ("tenant", "slug") else "1"), url)
        client = user if rule.rule.startswith("/me") else admin if rule.rule.startswith("/admin") else anonymous
        answer = client.get(url)
        if not answer.content_type.startswith("text/html"):
            continue
        checked += 1
        policy = answer.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors" in policy, (url, answer.status_code, policy)
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", url
        if rule.endpoint.startswith(("pbx365_admin.", "pbx365_public.")):
            assert answer.headers.get("Cache-Control") == "no-store", url  # pages that handle tokens and keys
    assert checked >= 25
