"""Signing in through the emulator as a synced user: admin portal, web client and the app's code exchange.

The users are linked by a real user sync (an RQ worker running the sync job against the emulator), not by hand.
"""
from __future__ import annotations

import base64
import hashlib
import secrets

from .conftest import PORTAL, SBC, Browser, query


def _pbx_user(sso, user_id: str):
    from demo_app.host import DemoHost

    with sso.app.app_context():
        return DemoHost().get_user("acme", user_id)


def test_web_client_sign_in_lands_on_me(sso):
    alice = _pbx_user(sso, sso.sync_users()["alice"])
    assert alice.username != "alice@acme"  # sync created her: the seeded alice is someone else
    browser = Browser(sso)
    authorize = browser.start("/integrations/microsoft365/sign-in/acme/web")
    params = query(authorize)
    # The tenant's own authority, never /common; PKCE S256, state and nonce.
    assert authorize.startswith(f"{sso.emulator.base_url}/{sso.tid}/oauth2/v2.0/authorize?")
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["state"] and params["nonce"] and params["client_id"] == sso.app_id
    assert params["redirect_uri"] == PORTAL + "/integrations/microsoft365/oauth2/callback"
    answer = browser.portal("GET", browser.microsoft_sign_in(authorize, sso.upn("alice")))
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/me")
    me = browser.portal("GET", "/me").get_data(as_text=True)
    assert "Alice Anders" in me and alice.extension in me and "Alice Smith" not in me


def test_admin_portal_sign_in_opens_the_dashboard(sso):
    # The PBX's existing admin has the Entra admin's address, so user sync links them (link_existing).
    sso.emulator.patch_user(sso.tid, sso.oid("admin"), mail=_pbx_user(sso, sso.host_ids["admin@acme"]).email)
    assert sso.sync_users()["admin"] == sso.host_ids["admin@acme"]
    browser = Browser(sso)
    answer = browser.sign_in("/integrations/microsoft365/sign-in/acme/admin", sso.upn("admin"))
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    page = browser.portal("GET", answer.headers["Location"])
    assert page.status_code == 200 and "admin@acme" in page.get_data(as_text=True)
    # The admin now reaches the extension's tabs (a tenant admin session).
    assert browser.portal("GET", "/admin/integrations/microsoft365/sign-in").status_code == 200


def test_next_path_is_honoured(sso):
    sso.sync_users()
    answer = Browser(sso).sign_in("/integrations/microsoft365/sign-in/acme/web?next=/me%3Ftab%3Dcontacts",
                                  sso.upn("alice"))
    assert answer.headers["Location"] == "/me?tab=contacts"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def app_code(sso, browser, redirect_uri: str = "pbxapp://auth", user: str = "alice") -> tuple[str, str, dict]:
    verifier, challenge = _pkce()
    start = ("/integrations/microsoft365/app/authorize?tenant=acme&redirect_uri="
             f"{redirect_uri}&code_challenge={challenge}&code_challenge_method=S256&state=app-state-1")
    back = browser.portal("GET", browser.microsoft_sign_in(browser.start(start), sso.upn(user)))
    assert back.status_code == 302, back.get_data(as_text=True)[:500]
    return verifier, back.headers["Location"], query(back.headers["Location"])


def test_app_sign_in_exchanges_a_one_time_code_for_the_host_token(sso):
    links = sso.sync_users()
    browser = Browser(sso)
    verifier, location, params = app_code(sso, browser)
    assert location.startswith("pbxapp://auth?") and params["state"] == "app-state-1"
    app = sso.app.test_client()  # the app itself: no browser cookies
    token = app.post("/integrations/microsoft365/app/token", base_url=PORTAL,
                     data={"grant_type": "authorization_code", "code": params["code"], "code_verifier": verifier,
                           "redirect_uri": "pbxapp://auth"})
    assert token.status_code == 200, token.get_data(as_text=True)
    body = token.get_json()
    assert body["token_type"] == "Bearer" and body["access_token"] and body["tenant"] == "acme"
    assert token.headers["Cache-Control"] == "no-store"
    # The host accepts it: the demo's app API knows the user by this token.
    from demo_app.models import AppToken, db

    with sso.app.app_context():
        row = db.session.query(AppToken).filter_by(
            token_sha256=hashlib.sha256(body["access_token"].encode()).hexdigest()).one()
        assert str(row.user_id) == links["alice"]
    # One-time: the same code again is refused.
    again = app.post("/integrations/microsoft365/app/token", base_url=PORTAL,
                     data={"grant_type": "authorization_code", "code": params["code"], "code_verifier": verifier,
                           "redirect_uri": "pbxapp://auth"})
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


def test_app_loopback_redirect_any_port_and_wrong_verifier(sso):
    sso.sync_users()
    browser = Browser(sso)
    verifier, location, params = app_code(sso, browser, "http://127.0.0.1:53177/cb")
    assert location.startswith("http://127.0.0.1:53177/cb?code=")
    wrong = sso.app.test_client().post("/integrations/microsoft365/app/token", base_url=PORTAL, data={
        "grant_type": "authorization_code", "code": params["code"], "code_verifier": _pkce()[0],
        "redirect_uri": "http://127.0.0.1:53177/cb"})
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"


def test_sbc_domain_uses_its_own_redirect_uri_behind_a_trusted_proxy(sso):
    sso.sync_users()
    forwarded = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "sbc.test",
                 "HTTP_X_FORWARDED_PORT": "8444", "HTTP_X_FORWARDED_FOR": "198.51.100.7", "REMOTE_ADDR": "127.0.0.1"}
    browser = Browser(sso, base_url="http://127.0.0.1:5000", environ=forwarded)
    authorize = browser.start("/integrations/microsoft365/sign-in/acme/web")
    assert query(authorize)["redirect_uri"] == SBC + "/integrations/microsoft365/oauth2/callback"
    back = browser.microsoft_sign_in(authorize, sso.upn("alice"))
    assert back.startswith(SBC + "/integrations/microsoft365/oauth2/callback?")
    answer = browser.portal("GET", "http://127.0.0.1:5000" + back[len(SBC):])
    assert answer.status_code == 302 and answer.headers["Location"] == "/me"
