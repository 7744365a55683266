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


def test_sign_in_through_nginx_stays_on_the_sbc_domain(sso, live, sbc):
    use_public_urls(sso, live.url, sbc.url)
    sso.link("alice", "alice@acme")
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
    assert "Alice" in me.text and "101" in me.text


def test_direct_sign_in_on_the_live_portal_uses_the_portal_uri(sso, live, sbc):
    use_public_urls(sso, live.url, sbc.url)
    sso.link("alice", "alice@acme")
    session = requests.Session()
    session.trust_env = False
    start = session.get(f"{live.url}/integrations/microsoft365/sign-in/acme/web", allow_redirects=False, timeout=30)
    assert query(start.headers["Location"])["redirect_uri"] == live.url + CALLBACK
    back = _ms_sign_in(session, sso.emulator, start.headers["Location"], sso.upn("alice"))
    me = session.get(back, timeout=30)
    assert me.status_code == 200 and me.url == f"{live.url}/me" and "Alice" in me.text
