"""Sign-in started at the SBC domain (a real nginx, demo_app/sbc) ends at the SBC domain."""
from __future__ import annotations

import re
from html import unescape

import pytest
import requests

from flask_pbx365.testing import PASSWORD

from .conftest import query
from .live import CALLBACK, serve, use_public_urls


@pytest.fixture
def live(app):
    yield from serve(app)


@pytest.fixture
def sbc(live, nginx_path, tmp_path):
    from demo_app.sbc.start import start, stop
    from tests.fixtures_services import free_port

    running = start(live.url, free_port(), directory=tmp_path / "sbc", public_host="localhost")
    yield running
    stop(running)


def _ms_sign_in(session: requests.Session, emulator, authorize: str, username: str) -> str:
    page = session.get(authorize, verify=emulator.ca_path, timeout=30)
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    fields = {unescape(k): unescape(v) for k, v in
              re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)}
    fields.update(loginfmt=username, passwd=PASSWORD)
    answer = session.post(emulator.base_url + action, data=fields, allow_redirects=False, verify=emulator.ca_path,
                          timeout=30)
    assert answer.status_code == 302, answer.text[:500]
    return answer.headers["Location"]


def _extension(sso, user_id: str) -> str:
    from demo_app.host import DemoHost

    with sso.app.app_context():
        return DemoHost().get_user("acme", user_id).extension


def test_sign_in_through_nginx_stays_on_the_sbc_domain(sso, live, sbc):
    use_public_urls(sso, live.url, sbc.url)
    extension = _extension(sso, sso.sync_users()["alice"])
    session = requests.Session()
    session.trust_env = False
    verify = str(sbc.certificate)
    start = session.get(f"{sbc.url}/integrations/microsoft365/sign-in/acme/web", allow_redirects=False,
                        verify=verify, timeout=30)
    assert start.status_code == 302, start.text[:500]
    assert query(start.headers["Location"])["redirect_uri"] == sbc.url + CALLBACK
    back = _ms_sign_in(session, sso.emulator, start.headers["Location"], sso.upn("alice"))
    assert back.startswith(sbc.url + CALLBACK + "?")
    me = session.get(back, verify=verify, timeout=30)
    assert me.status_code == 200 and me.url == f"{sbc.url}/me"
    assert "Alice Anders" in me.text and extension in me.text


def test_direct_sign_in_on_the_live_portal_uses_the_portal_uri(sso, live, sbc):
    use_public_urls(sso, live.url, sbc.url)
    sso.sync_users()
    session = requests.Session()
    session.trust_env = False
    start = session.get(f"{live.url}/integrations/microsoft365/sign-in/acme/web", allow_redirects=False, timeout=30)
    assert query(start.headers["Location"])["redirect_uri"] == live.url + CALLBACK
    back = _ms_sign_in(session, sso.emulator, start.headers["Location"], sso.upn("alice"))
    me = session.get(back, timeout=30)
    assert me.status_code == 200 and me.url == f"{live.url}/me" and "Alice Anders" in me.text


def test_admin_portal_and_app_through_nginx_stay_on_the_sbc_domain(sso, live, sbc):
    import base64
    import hashlib
    import secrets

    use_public_urls(sso, live.url, sbc.url)
    from demo_app.host import DemoHost

    with sso.app.app_context():
        admin_email = DemoHost().get_user("acme", sso.host_ids["admin@acme"]).email
    sso.emulator.patch_user(sso.tid, sso.oid("admin"), mail=admin_email)  # user sync links the PBX admin
    links = sso.sync_users()
    verify = str(sbc.certificate)
    session = requests.Session()
    session.trust_env = False
    start = session.get(f"{sbc.url}/integrations/microsoft365/sign-in/acme/admin", allow_redirects=False,
                        verify=verify, timeout=30)
    assert query(start.headers["Location"])["redirect_uri"] == sbc.url + CALLBACK
    back = _ms_sign_in(session, sso.emulator, start.headers["Location"], sso.upn("admin"))
    dashboard = session.get(back, verify=verify, timeout=30)
    assert dashboard.status_code == 200 and dashboard.url.startswith(sbc.url + "/admin")
    assert "admin@acme" in dashboard.text

    # The app: the system browser goes through the SBC; the app redeems its code there too.
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    browser = requests.Session()
    browser.trust_env = False
    start = browser.get(f"{sbc.url}/integrations/microsoft365/app/authorize", params={
        "tenant": "acme", "redirect_uri": "pbxapp://auth", "code_challenge": challenge,
        "code_challenge_method": "S256", "state": "s1"}, allow_redirects=False, verify=verify, timeout=30)
    assert query(start.headers["Location"])["redirect_uri"] == sbc.url + CALLBACK
    back = _ms_sign_in(browser, sso.emulator, start.headers["Location"], sso.upn("alice"))
    to_app = browser.get(back, allow_redirects=False, verify=verify, timeout=30)
    assert to_app.status_code == 302 and to_app.headers["Location"].startswith("pbxapp://auth?")
    code = query(to_app.headers["Location"])["code"]
    token = requests.post(f"{sbc.url}/integrations/microsoft365/app/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": "pbxapp://auth"}, verify=verify, timeout=30)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["tenant"] == "acme" and body["access_token"]
    from demo_app.models import AppToken, db

    with sso.app.app_context():
        row = db.session.query(AppToken).filter_by(
            token_sha256=hashlib.sha256(body["access_token"].encode()).hexdigest()).one()
        assert str(row.user_id) == links["alice"]
