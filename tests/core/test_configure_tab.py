"""The Configure tab as a tenant admin uses it: IDs, cloud, redirect URIs, key pairs, CSRF, tenant isolation."""
from __future__ import annotations

import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.conftest import csrf_from, login

TAB = "/admin/integrations/microsoft365/configure"
APP_ID = "6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6"
DIRECTORY_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def _page(client) -> str:
    response = client.get(TAB)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _post(client, path: str, data: dict | None = None):
    return client.post(path, data={"csrf_token": csrf_from(_page(client), "microsoft365"), **(data or {})})


def _key_links(html: str) -> list[str]:
    return re.findall(r'/configure/keys/([0-9a-f]{64})/public_key\.pem', html)


def test_anonymous_is_sent_to_the_login_page(client):
    response = client.get(TAB)
    assert response.status_code == 302
    assert "/admin/login" in response.location


def test_web_client_user_has_no_admin_access(app):
    client = app.test_client()
    login(client, "alice@acme", "alice", page="/login")  # a web-client user, not a tenant admin
    response = client.get(TAB)
    assert response.status_code == 302 and "/admin/login" in response.location
    assert client.post(TAB, data={"client_id": APP_ID}).status_code == 302
    assert client.post(TAB + "/keys").status_code == 302


def test_save_ids_and_cloud(admin_client):
    response = _post(admin_client, TAB, {"client_id": APP_ID, "directory_id": DIRECTORY_ID.upper(), "cloud": "usgov"})
    assert response.status_code == 302
    html = _page(admin_client)
    assert f'value="{APP_ID}"' in html
    assert f'value="{DIRECTORY_ID}"' in html  # normalised GUID
    assert re.search(r'<option value="usgov"\s+selected', html)


def test_invalid_directory_id_is_explained_and_input_kept(admin_client):
    response = _post(admin_client, TAB, {"client_id": APP_ID, "directory_id": "contoso.onmicrosoft", "cloud": "global"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "is not a GUID" in html
    assert 'value="contoso.onmicrosoft"' in html
    assert f'value="{APP_ID}"' in html
    assert f'value="{APP_ID}"' not in _page(admin_client)  # nothing was saved


def test_custom_cloud_needs_https_endpoints(admin_client):
    response = _post(admin_client, TAB, {"client_id": APP_ID, "directory_id": DIRECTORY_ID, "cloud": "custom",
                                         "login_url": "http://login.example", "graph_url": "https://graph.example"})
    assert response.status_code == 400
    assert "https://" in response.get_data(as_text=True)


def test_both_redirect_uris_are_shown_with_copy_buttons(admin_client):
    html = _page(admin_client)
    assert 'value="http://portal.test/integrations/microsoft365/oauth2/callback"' in html
    assert 'value="https://sbc.test:8444/integrations/microsoft365/oauth2/callback"' in html
    assert html.count("data-copy=") == 2


def test_only_the_portal_uri_without_an_sbc(app, admin_client):
    app.config["DEMO_SBC_URL"] = ""
    html = _page(admin_client)
    assert "oauth2/callback" in html and "sbc.test" not in html
    assert html.count("data-copy=") == 1


def test_generate_download_and_rotate_key_pairs(admin_client):
    assert _post(admin_client, TAB + "/keys").status_code == 302
    html = _page(admin_client)
    [first] = _key_links(html)
    download = admin_client.get(f"{TAB}/keys/{first}/public_key.pem")
    assert download.status_code == 200
    assert 'filename="public_key.pem"' in download.headers["Content-Disposition"]
    cert = x509.load_pem_x509_certificate(download.data)
    assert cert.fingerprint(hashes.SHA256()).hex() == first
    sha1 = cert.fingerprint(hashes.SHA1()).hex().upper()
    assert sha1 in html and first.upper() in html
    assert cert.not_valid_after_utc.strftime("%Y-%m-%d") in html
    assert "In use" in html

    _post(admin_client, TAB + "/keys")
    html = _page(admin_client)
    links = _key_links(html)
    assert len(links) == 2 and first in links
    second = next(s for s in links if s != first)
    assert html.count("In use") == 1  # the old pair stays active until the admin switches
    assert _post(admin_client, f"{TAB}/keys/{second}/activate").status_code == 302
    html = _page(admin_client)
    in_use_row = html[html.index("In use"):]
    assert second.upper() in in_use_row[:600]


def test_expiry_warnings_at_30_and_7_days(app, admin_client):
    from datetime import datetime, timedelta, timezone

    from flask_pbx365.models import KeyPair
    from flask_pbx365.state import get_state

    _post(admin_client, TAB + "/keys")
    with app.app_context():
        row = get_state().db.session.query(KeyPair).filter_by(tenant="acme").one()
        row.not_after = datetime.now(timezone.utc) + timedelta(days=20, hours=1)
        get_state().db.session.commit()
    assert "expires on" in _page(admin_client)
    with app.app_context():
        row = get_state().db.session.query(KeyPair).filter_by(tenant="acme").one()
        row.not_after = datetime.now(timezone.utc) + timedelta(days=5, hours=1)
        get_state().db.session.commit()
    html = _page(admin_client)
    assert "expires in 5 days" in html and "Generate a new key pair" in html


@pytest.mark.parametrize("path", ["", "/keys", "/keys/{sha}/activate", "/test-connection", "/admin-consent"])
def test_every_form_requires_the_csrf_token(admin_client, path):
    _post(admin_client, TAB + "/keys")
    [sha] = _key_links(_page(admin_client))
    response = admin_client.post(TAB + path.format(sha=sha), data={"client_id": APP_ID})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    response = admin_client.post(TAB + path.format(sha=sha), data={"client_id": APP_ID, "csrf_token": "forged"})
    assert response.status_code == 400


def test_tenant_admin_cannot_reach_another_tenants_keys_or_settings(app, admin_client):
    _post(admin_client, TAB, {"client_id": APP_ID, "directory_id": DIRECTORY_ID, "cloud": "global"})
    _post(admin_client, TAB + "/keys")
    [acme_sha] = _key_links(_page(admin_client))

    other = app.test_client()
    login(other, "admin@globex", "admin")
    html = _page(other)
    assert APP_ID not in html and acme_sha not in html
    assert other.get(f"{TAB}/keys/{acme_sha}/public_key.pem").status_code == 404
    token = csrf_from(html, "microsoft365")
    assert other.post(f"{TAB}/keys/{acme_sha}/activate", data={"csrf_token": token}).status_code == 404
    # globex's save does not touch acme
    other.post(TAB, data={"csrf_token": token, "client_id": "", "directory_id": "", "cloud": "china"})
    assert f'value="{APP_ID}"' in _page(admin_client)


def test_system_admin_works_in_the_tenant_scope_they_switched_into(app):
    client = app.test_client()
    login(client, "sysadmin", "sysadmin")
    html = client.get("/admin/tenants").get_data(as_text=True)
    token = csrf_from(html)
    client.post("/admin/tenants/globex/switch", data={"csrf_token": token})
    page = client.get(TAB)
    assert page.status_code == 200


def test_admin_consent_round_trip_records_the_verified_redirect_uri(admin_client):
    from urllib.parse import parse_qs, urlsplit

    _post(admin_client, TAB, {"client_id": APP_ID, "directory_id": DIRECTORY_ID, "cloud": "global"})
    response = _post(admin_client, TAB + "/admin-consent")
    assert response.status_code == 302
    target = urlsplit(response.location)
    assert f"{target.scheme}://{target.netloc}{target.path}" == \
        f"https://login.microsoftonline.com/{DIRECTORY_ID}/adminconsent"
    query = parse_qs(target.query)
    assert query["client_id"] == [APP_ID]
    assert query["redirect_uri"] == ["http://portal.test/integrations/microsoft365/oauth2/callback"]
    callback = "/integrations/microsoft365/oauth2/callback"
    done = admin_client.get(callback, query_string={"admin_consent": "True", "tenant": DIRECTORY_ID,
                                                    "state": query["state"][0]})
    assert done.status_code == 302
    assert "Admin consent granted" in _page(admin_client)
    replay = admin_client.get(callback, query_string={"admin_consent": "True", "state": query["state"][0]})
    assert replay.status_code == 400


def test_consent_error_shows_the_redirect_uri_to_add(admin_client):
    from urllib.parse import parse_qs, urlsplit

    _post(admin_client, TAB, {"client_id": APP_ID, "directory_id": DIRECTORY_ID, "cloud": "global"})
    state = parse_qs(urlsplit(_post(admin_client, TAB + "/admin-consent").location).query)["state"][0]
    response = admin_client.get("/integrations/microsoft365/oauth2/callback", query_string={
        "state": state, "error": "invalid_request",
        "error_description": "AADSTS50011: The redirect URI specified in the request does not match."})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "AADSTS50011" in html
    assert "http://portal.test/integrations/microsoft365/oauth2/callback" in html


def test_warning_when_the_portal_domain_changed_since_consent(app, admin_client):
    from urllib.parse import parse_qs, urlsplit

    _post(admin_client, TAB, {"client_id": APP_ID, "directory_id": DIRECTORY_ID, "cloud": "global"})
    state = parse_qs(urlsplit(_post(admin_client, TAB + "/admin-consent").location).query)["state"][0]
    admin_client.get("/integrations/microsoft365/oauth2/callback",
                     query_string={"admin_consent": "True", "state": state})
    assert "changed since the last successful sign-in" not in _page(admin_client)
    app.config["DEMO_PUBLIC_URL"] = "https://pbx.acme.example"
    html = _page(admin_client)
    assert 'value="https://pbx.acme.example/integrations/microsoft365/oauth2/callback"' in html
    assert "portal domain changed since the last successful sign-in" in html


def test_every_admin_post_route_of_every_tab_refuses_a_missing_csrf_token(app, admin_client):
    posts = [rule for rule in app.url_map.iter_rules()
             if rule.endpoint.startswith("pbx365_admin.") and "POST" in (rule.methods or ())]
    assert len(posts) >= 10  # every tab's forms: configure, user sync, sign in, contacts, mail, presence
    for rule in posts:
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<{arg}>", "0" * 64).replace(f"<string:{arg}>", "0" * 64)
        url = re.sub(r"<[^>]+>", "0", url)
        response = admin_client.post(url, data={"enabled": "on"})
        assert response.status_code == 400, (rule.rule, response.status_code)
        assert "CSRF" in response.get_data(as_text=True), rule.rule


def test_every_admin_route_requires_the_hosts_admin_check(app):
    anonymous = app.test_client()
    web_user = app.test_client()
    login(web_user, "alice@acme", "alice", page="/login")
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("pbx365_admin.")]
    assert len(rules) >= 15
    for rule in rules:
        url = re.sub(r"<[^>]+>", "0", rule.rule)
        for client in (anonymous, web_user):
            for method in sorted((rule.methods or set()) & {"GET", "POST"}):
                response = client.open(url, method=method)
                assert response.status_code == 302 and "/admin/login" in response.location, (method, rule.rule)


def test_admin_and_sign_in_pages_cannot_be_framed_or_cached(admin_client, app):
    page = admin_client.get("/admin/integrations/microsoft365/configure")
    assert page.status_code == 200
    assert "frame-ancestors 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN" and page.headers["Cache-Control"] == "no-store"
    anonymous = app.test_client().get("/admin/integrations/microsoft365/configure")
    assert anonymous.headers["Cache-Control"] == "no-store"  # the redirect to the login page too
    callback = app.test_client().get("/integrations/microsoft365/oauth2/callback?state=nope")
    assert "frame-ancestors 'self'" in callback.headers["Content-Security-Policy"]
