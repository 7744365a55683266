"""The rest of the negative matrix, through the emulator: replays, matching, allowed set, proxies, redirects."""
from __future__ import annotations

from .conftest import PORTAL, Browser, query

START = "/integrations/microsoft365/sign-in/acme/web"


def _signed_in(browser) -> bool:
    return browser.portal("GET", "/me").status_code == 200


def test_replayed_state_is_refused_even_with_the_old_session_cookie(sso):
    sso.sync_users()
    browser = Browser(sso)
    back = browser.microsoft_sign_in(browser.start(START), sso.upn("alice"))
    cookie_before = browser.client.get_cookie("session", domain="portal.test").value
    assert browser.portal("GET", back).status_code == 302
    # Same browser, same answer again: the state was used.
    again = browser.portal("GET", back)
    assert again.status_code == 400 and "already used" in again.get_data(as_text=True)
    # An attacker replaying the callback with the session cookie from before the first use.
    attacker = Browser(sso)
    attacker.client.set_cookie("session", cookie_before, domain="portal.test")
    replay = attacker.portal("GET", back)
    assert replay.status_code == 400 and "already used" in replay.get_data(as_text=True)
    assert not _signed_in(attacker)


def test_replayed_code_is_refused(sso):
    sso.sync_users()
    browser = Browser(sso)
    first = query(browser.microsoft_sign_in(browser.start(START), sso.upn("alice")))
    assert browser.portal("GET", f"/integrations/microsoft365/oauth2/callback?code={first['code']}&"
                                 f"state={first['state']}").status_code == 302
    thief = Browser(sso)
    state = query(thief.start(START))["state"]  # a fresh, valid state in the thief's own session
    answer = thief.portal("GET", f"/integrations/microsoft365/oauth2/callback?code={first['code']}&state={state}")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "AADSTS54005" in page
    assert not _signed_in(thief)


def test_email_match_never_signs_in(sso):
    """bob's Microsoft account carries alice's PBX email and UPN-like name; only (tid, oid) counts."""
    from demo_app.host import DemoHost

    links = sso.sync_users(users=[sso.oid("alice")])
    assert set(links) == {"alice"}
    with sso.app.app_context():
        alice_email = DemoHost().get_user("acme", links["alice"]).email
    sso.emulator.patch_user(sso.tid, sso.oid("bob"), mail=alice_email, otherMails=[alice_email])
    browser = Browser(sso)
    answer = browser.sign_in(START, sso.upn("bob"))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 403 and "not linked" in page and "User Sync" in page
    assert not _signed_in(browser)


def test_unlinked_and_disabled_users_get_a_page_saying_why(sso):
    links = sso.sync_users(departments=["Sales"], guard_percent=100)  # carol (Engineering) is not synced
    assert set(links) == {"alice", "bob"}
    answer = Browser(sso).sign_in(START, sso.upn("carol"))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 403 and "not linked to a user of this PBX" in page and "run a sync" in page
    assert "Ask your PBX administrator" in page
    # bob is disabled in Microsoft 365; the next sync disables his PBX account and link.
    assert Browser(sso).sign_in(START, sso.upn("bob")).status_code == 302
    sso.emulator.patch_user(sso.tid, sso.oid("bob"), accountEnabled=False)
    assert "bob" not in sso.sync_users()
    sso.emulator.patch_user(sso.tid, sso.oid("bob"), accountEnabled=True)  # Microsoft lets him in again...
    answer = Browser(sso).sign_in(START, sso.upn("bob"))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 403 and "is disabled" in page and "run a sync" in page  # ...the PBX does not


def test_user_outside_the_allowed_set(sso):
    sso.sync_users()
    sso.settings(who="users", users=[sso.oid("alice")])
    answer = Browser(sso).sign_in(START, sso.upn("bob"))
    assert answer.status_code == 403 and "not among the users allowed" in answer.get_data(as_text=True)
    assert Browser(sso).sign_in(START, sso.upn("alice")).status_code == 302


def test_group_members_only_nested_groups_count(sso):
    sso.sync_users()  # alice is in Sales, which is nested in Everyone; carol directly in Everyone, not in Sales
    everyone, sales = _group_ids(sso)
    sso.settings(who="groups", groups=[sales])
    assert Browser(sso).sign_in(START, sso.upn("alice")).status_code == 302
    refused = Browser(sso).sign_in(START, sso.upn("carol"))
    assert refused.status_code == 403 and "not among" in refused.get_data(as_text=True)
    sso.settings(who="groups", groups=[everyone])
    assert Browser(sso).sign_in(START, sso.upn("alice")).status_code == 302


def _group_ids(sso) -> tuple[str, str]:
    from flask_pbx365.connection import credentials_for
    from flask_pbx365.graph import GraphClient

    with sso.app.app_context(), GraphClient(credentials_for("acme")) as client:
        names = {g["displayName"]: g["id"] for g in client.iter_items("/groups")}
    return names["Everyone"], names["Sales"]


def test_target_switched_off_and_sso_disabled(sso):
    sso.sync_users()
    sso.settings(targets=["admin"])
    answer = Browser(sso).portal("GET", START)
    assert answer.status_code == 404 and "not enabled for the web client" in answer.get_data(as_text=True)
    sso.settings(enabled=False)
    assert Browser(sso).portal("GET", START).status_code == 404


def test_spoofed_forwarded_host_from_an_untrusted_peer_is_ignored(sso):
    spoof = {"HTTP_X_FORWARDED_HOST": "evil.example", "HTTP_X_FORWARDED_PROTO": "https",
             "REMOTE_ADDR": "203.0.113.9"}
    authorize = Browser(sso, environ=spoof).start(START)
    assert query(authorize)["redirect_uri"] == PORTAL + "/integrations/microsoft365/oauth2/callback"
    assert "evil" not in authorize
    # Even a trusted proxy cannot turn an unconfigured host name into a redirect URI.
    trusted = dict(spoof, REMOTE_ADDR="127.0.0.1")
    answer = Browser(sso, environ=trusted).portal("GET", START)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "not one of its public addresses" in page
    # And a Host header nobody configured, without any proxy, is refused too.
    answer = Browser(sso, base_url="http://evil.example").portal("GET", START)
    assert answer.status_code == 400 and "Location" not in answer.headers


def test_open_redirect_in_next_is_dropped(sso):
    sso.sync_users()
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)",
                 "/%0d%0aLocation:%20https://evil.example"):
        answer = Browser(sso).sign_in(f"{START}?next={evil}", sso.upn("alice"))
        assert answer.status_code == 302
        assert answer.headers["Location"] == "/me", (evil, answer.headers["Location"])


def test_redirect_uri_mismatch_names_the_exact_uri(sso):
    sso.emulator.patch_application(sso.tid, sso.app_id, redirectUris=[])
    browser = Browser(sso)
    authorize = browser.start(START)
    # Microsoft itself shows AADSTS50011 with the URI on its page (it never redirects to an unregistered URI).
    page = browser.ms.get(authorize, timeout=30).text
    assert "AADSTS50011" in page and PORTAL + "/integrations/microsoft365/oauth2/callback" in page
    # If an answer does come back with it (token redemption, or a Microsoft error page link), the portal says
    # exactly which URI to add.
    state = query(browser.start(START))["state"]
    answer = browser.portal("GET", "/integrations/microsoft365/oauth2/callback?error=invalid_request&"
                                   f"error_description=AADSTS50011%3A+redirect+mismatch&state={state}")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "Add this exact redirect URI in Entra" in text and PORTAL + "/integrations/microsoft365/oauth2/callback" in text


def test_app_redirect_uri_must_be_allow_listed(sso):
    answer = Browser(sso).portal("GET", "/integrations/microsoft365/app/authorize?tenant=acme&redirect_uri="
                                        "evilapp://steal&code_challenge=" + "a" * 43 + "&code_challenge_method=S256")
    assert answer.status_code == 400 and "not allowed" in answer.get_data(as_text=True)
    plain = Browser(sso).portal("GET", "/integrations/microsoft365/app/authorize?tenant=acme&redirect_uri="
                                       "pbxapp://auth&code_challenge=abc&code_challenge_method=plain")
    assert plain.status_code == 400 and "S256" in plain.get_data(as_text=True)
