"""The Sign In tab, the login-page button, sign-out and the "Microsoft only" password rule."""
from __future__ import annotations

from tests.conftest import csrf_from, login

from .conftest import PORTAL, Browser, query

TAB = "/admin/integrations/microsoft365/sign-in"


def test_tab_saves_settings_and_shows_both_redirect_uris(admin_client, app):
    page = admin_client.get(TAB)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Sign In" in html
    assert "http://portal.test/integrations/microsoft365/oauth2/callback" in html
    assert "https://sbc.test:8444/integrations/microsoft365/oauth2/callback" in html
    saved = admin_client.post(TAB, data={
        "csrf_token": csrf_from(html, "microsoft365/sign-in"), "enabled": "on", "who": "groups",
        "groups": "6f1b2c3d-0000-4000-8000-000000000001\n", "targets": ["admin", "web"], "mode": "microsoft_only",
        "app_redirect_uris": "pbxapp://auth\nhttp://127.0.0.1/cb"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[-3000:]
    from flask_pbx365.settings import get_settings

    with app.app_context():
        assert get_settings("acme")["sign_in"] == {
            "enabled": True, "who": "groups", "users": [], "groups": ["6f1b2c3d-0000-4000-8000-000000000001"],
            "targets": ["admin", "web"], "mode": "microsoft_only",
            "app_redirect_uris": ["pbxapp://auth", "http://127.0.0.1/cb"]}


def test_tab_refuses_bad_values_and_missing_csrf(admin_client, app):
    html = admin_client.get(TAB).get_data(as_text=True)
    bad = admin_client.post(TAB, data={"csrf_token": csrf_from(html, "microsoft365/sign-in"), "enabled": "on", "who": "groups",
                                       "groups": "not-a-guid", "targets": ["web"]})
    assert bad.status_code == 400 and "not a GUID" in bad.get_data(as_text=True)
    forged = admin_client.post(TAB, data={"enabled": "on", "who": "all", "targets": ["web"]})
    assert forged.status_code == 400
    from flask_pbx365.settings import get_settings

    with app.app_context():
        assert get_settings("acme")["sign_in"]["enabled"] is False


def test_tab_needs_a_tenant_admin(app):
    client = app.test_client()
    assert client.get(TAB).status_code == 302
    login(client, "alice@acme", "alice", page="/login", tenant="acme")
    assert client.get(TAB).status_code in (302, 403)


def test_button_appears_only_where_enabled(sso):
    client = sso.app.test_client()
    web = client.get("/login?tenant=acme&next=/me", base_url=PORTAL).get_data(as_text=True)
    assert "Sign in with Microsoft" in web and "/integrations/microsoft365/sign-in/acme/web?next=/me" in web
    assert 'class="pbx365-signin-microsoft"' in web and "#f25022" in web
    sso.settings(targets=["web"])
    admin = client.get("/admin/login?tenant=acme", base_url=PORTAL).get_data(as_text=True)
    assert "pbx365-signin-microsoft" not in admin
    sso.settings(enabled=False)
    assert "pbx365-signin-microsoft" not in client.get("/login?tenant=acme", base_url=PORTAL).get_data(as_text=True)


def test_sign_out_clears_the_session_and_optionally_microsofts(sso):
    sso.sync_users()
    browser = Browser(sso)
    assert browser.sign_in("/integrations/microsoft365/sign-in/acme/web", sso.upn("alice")).status_code == 302
    token = _pbx365_token(browser)
    out = browser.portal("POST", "/integrations/microsoft365/sign-out/acme",
                         data={"csrf_token": token, "microsoft": "1", "next": "/login?tenant=acme"})
    assert out.status_code == 302
    end_session = out.headers["Location"]
    assert end_session.startswith(f"{sso.emulator.base_url}/{sso.tid}/oauth2/v2.0/logout?")
    # Microsoft returns only to a registered redirect URI: this domain's callback, which goes on to ``next``.
    assert query(end_session)["post_logout_redirect_uri"] == PORTAL + "/integrations/microsoft365/oauth2/callback"
    assert browser.portal("GET", "/me").status_code == 302  # the PBX session is gone
    # Microsoft's session ends too: the next sign-in asks for the password again.
    back = browser.ms.get(end_session, allow_redirects=False, timeout=30)
    assert back.status_code == 302 and back.headers["Location"] == query(end_session)["post_logout_redirect_uri"]
    landing = browser.portal("GET", back.headers["Location"])
    assert landing.status_code == 302 and landing.headers["Location"] == "/login?tenant=acme"
    page = browser.ms.get(browser.start("/integrations/microsoft365/sign-in/acme/web"), allow_redirects=False,
                          timeout=30)
    assert page.status_code == 200 and 'name="passwd"' in page.text


def test_sign_out_without_csrf_is_refused_and_plain_sign_out_stays_local(sso):
    sso.sync_users()
    browser = Browser(sso)
    browser.sign_in("/integrations/microsoft365/sign-in/acme/web", sso.upn("alice"))
    assert browser.portal("POST", "/integrations/microsoft365/sign-out/acme").status_code == 400
    out = browser.portal("POST", "/integrations/microsoft365/sign-out/acme",
                         data={"csrf_token": _pbx365_token(browser), "next": "https://evil.example/"})
    assert out.status_code == 302 and out.headers["Location"] == "/"


def _pbx365_token(browser) -> str:
    """The extension's CSRF token of this browser's session, as a page rendering pbx365_csrf_token() shows it."""
    with browser.client.session_transaction(base_url=browser.base_url) as session:
        from flask_pbx365.csrf import _SESSION_KEY
        import secrets

        session.setdefault(_SESSION_KEY, secrets.token_urlsafe(32))
        return session[_SESSION_KEY]


def test_microsoft_only_mode_keeps_local_accounts_and_blocks_linked_passwords(sso):
    from flask_pbx365.sso import password_sign_in_refusal

    alice = sso.sync_users()["alice"]
    with sso.app.app_context():
        assert password_sign_in_refusal("acme", alice, "web") is None
        sso.settings(mode="microsoft_only")
        assert "Sign in with Microsoft" in password_sign_in_refusal("acme", alice, "web")
        # A local (unlinked) account, such as the tenant's own admin, keeps its password: the break-glass.
        assert password_sign_in_refusal("acme", sso.host_ids["admin@acme"], "admin") is None
        sso.settings(targets=["admin"])
        assert password_sign_in_refusal("acme", alice, "web") is None


def _password_attempt(sso, page: str, username: str, password: str):
    client = sso.app.test_client()
    html = client.get(f"{page}?tenant=acme", base_url=PORTAL).get_data(as_text=True)
    answer = client.post(f"{page}?tenant=acme", base_url=PORTAL, data={
        "username": username, "password": password, "tenant": "acme", "csrf_token": csrf_from(html)})
    return answer, client


def test_demo_password_forms_enforce_microsoft_only_but_keep_the_break_glass(sso):
    """The demo's login pages ask the extension: synced users must use Microsoft; the system admin never."""
    from demo_app.host import DemoHost

    with sso.app.app_context():
        emails = {n: DemoHost().get_user("acme", sso.host_ids[f"{n}@acme"]).email for n in ("admin", "alice")}
    for name, email in emails.items():  # user sync links the PBX's existing admin and alice by address
        sso.emulator.patch_user(sso.tid, sso.oid(name), mail=email)
    links = sso.sync_users()
    assert links["admin"] == sso.host_ids["admin@acme"] and links["alice"] == sso.host_ids["alice@acme"]

    # "Microsoft or password": the linked users still have their password.
    assert _password_attempt(sso, "/login", "alice", "alice")[0].status_code == 302
    sso.settings(mode="microsoft_only")
    for page, username, password in (("/login", "alice", "alice"), ("/admin/login", "admin", "admin")):
        answer, client = _password_attempt(sso, page, username, password)
        html = answer.get_data(as_text=True)
        assert answer.status_code == 200 and 'use the "Sign in with Microsoft" button' in html.replace("&#34;", '"')
        assert client.get("/me" if page == "/login" else "/admin/", base_url=PORTAL).status_code == 302
    # A wrong password still only says so (the rule is not an account oracle).
    wrong = _password_attempt(sso, "/login", "alice", "nope")[0].get_data(as_text=True)
    assert "Wrong username or password" in wrong and "Sign in with Microsoft\" button" not in wrong
    # Unlinked local users and the PBX's system admin keep the password: the break-glass.
    assert _password_attempt(sso, "/login", "bob", "bob")[0].status_code == 302
    client = sso.app.test_client()
    html = client.get("/admin/login", base_url=PORTAL).get_data(as_text=True)
    answer = client.post("/admin/login", base_url=PORTAL, data={"username": "sysadmin", "password": "sysadmin",
                                                                 "csrf_token": csrf_from(html)})
    assert answer.status_code == 302
    # Only the targets where Microsoft sign-in is on are Microsoft-only.
    sso.settings(targets=["admin"])
    assert _password_attempt(sso, "/login", "alice", "alice")[0].status_code == 302
    assert _password_attempt(sso, "/admin/login", "admin", "admin")[0].status_code == 200


def test_web_client_sign_out_can_end_the_microsoft_session_too(sso):
    from tests.conftest import csrf_from

    sso.sync_users()
    browser = Browser(sso)
    assert browser.sign_in("/integrations/microsoft365/sign-in/acme/web", sso.upn("alice")).status_code == 302
    me = browser.portal("GET", "/me").get_data(as_text=True)
    assert "also sign out of Microsoft" in me
    out = browser.portal("POST", "/logout", data={"csrf_token": csrf_from(me, "/logout"), "microsoft": "1"})
    assert out.status_code == 302
    assert out.headers["Location"].startswith(f"{sso.emulator.base_url}/{sso.tid}/oauth2/v2.0/logout?")
    assert browser.portal("GET", "/me").status_code == 302

    browser = Browser(sso)
    browser.sign_in("/integrations/microsoft365/sign-in/acme/web", sso.upn("alice"))
    me = browser.portal("GET", "/me").get_data(as_text=True)
    out = browser.portal("POST", "/logout", data={"csrf_token": csrf_from(me, "/logout")})
    assert out.status_code == 302 and out.headers["Location"] == "/login?tenant=acme"  # stays local by default
