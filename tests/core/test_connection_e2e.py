"""The Configure tab against the Microsoft 365 emulator, as an admin walks through the seeds' steps:
IDs and cloud, key pair uploaded to the app registration, admin consent, test connection."""
from __future__ import annotations

import json
import re
import uuid
from urllib.parse import urljoin, urlsplit

import pytest

from flask_pbx365.testing import PASSWORD
from tests.conftest import csrf_from

TAB = "/admin/integrations/microsoft365/configure"
CALLBACK = "http://portal.test/integrations/microsoft365/oauth2/callback"


def _post(client, path, data=None):
    token = csrf_from(client.get(TAB).get_data(as_text=True), "microsoft365")
    return client.post(path, data={"csrf_token": token, **(data or {})})


@pytest.fixture
def registered(app, admin_client, m365_emulator, m365_tenant):
    """acme configured for the emulator's tenant with a key pair made on the Configure tab, whose
    public_key.pem is uploaded to a new app registration (no permissions consented yet)."""
    app_id = str(uuid.uuid4())
    response = _post(admin_client, TAB, {"client_id": app_id, "directory_id": m365_tenant, "cloud": "custom",
                                         "login_url": m365_emulator.base_url, "graph_url": m365_emulator.base_url,
                                         "ca_bundle": str(m365_emulator.ca_path)})
    assert response.status_code == 302, response.get_data(as_text=True)
    _post(admin_client, TAB + "/keys")
    [sha] = re.findall(r"/configure/keys/([0-9a-f]{64})/public_key\.pem", admin_client.get(TAB).get_data(as_text=True))
    pem = admin_client.get(f"{TAB}/keys/{sha}/public_key.pem").data.decode()
    m365_emulator.add_application(m365_tenant, appId=app_id, displayName="PBX Server-side", redirectUris=[CALLBACK],
                                  certificates=[pem], permissions=["User.Read.All", "GroupMember.Read.All",
                                                                   "Mail.Send"], adminConsent=False)
    return app_id


def _consent_in_browser(m365_emulator, tenant_id: str, start: str, decision: str = "accept") -> str:
    """Sign in as the tenant's Global Administrator on the emulator's consent page; return where it sends us."""
    session = m365_emulator.session
    page = session.get(start, allow_redirects=False)
    assert page.status_code == 200, page.text
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text, re.S)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(2)))
    fields.update(loginfmt=f"admin@{tenant_id[:8]}.contoso.example", passwd=PASSWORD, consent=decision)
    answer = session.post(urljoin(start, form.group(1)), data=fields, allow_redirects=False)
    assert answer.status_code in (302, 303), answer.text
    return answer.headers["Location"]


def _test_connection(client) -> str:
    return _post(client, TAB + "/test-connection").get_data(as_text=True)


def test_consent_then_test_connection(app, admin_client, registered, m365_emulator, m365_tenant):
    html = _test_connection(admin_client)
    assert "Not connected" in html and "User.ReadBasic.All" in html  # token issued, but no roles before consent

    start = _post(admin_client, TAB + "/admin-consent").location
    assert start.startswith(f"{m365_emulator.base_url}/{m365_tenant}/adminconsent?")
    back = _consent_in_browser(m365_emulator, m365_tenant, start)
    assert back.startswith(CALLBACK + "?")
    parts = urlsplit(back)
    done = admin_client.get(parts.path + "?" + parts.query)
    assert done.status_code == 302 and done.location.endswith(TAB)
    assert "Admin consent granted" in admin_client.get(TAB).get_data(as_text=True)

    html = _test_connection(admin_client)
    assert "Connected: a token was issued" in html
    result = app.test_cli_runner().invoke(args=["pbx365", "test-connection", "acme", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert set(data["granted"]) == {"User.Read.All", "GroupMember.Read.All", "Mail.Send"}
    assert data["features"]["photos"] == {"ok": True, "missing": []}
    assert data["features"]["mail"]["ok"] is True
    assert data["features"]["contacts"] == {"ok": False, "missing": ["Contacts.Read"]}
    assert data["features"]["phone_write_back"]["ok"] is False


def test_declined_consent_is_reported(app, admin_client, registered, m365_emulator, m365_tenant):
    start = _post(admin_client, TAB + "/admin-consent").location
    back = urlsplit(_consent_in_browser(m365_emulator, m365_tenant, start, decision="cancel"))
    page = admin_client.get(back.path + "?" + back.query)
    assert page.status_code == 400
    assert "AADSTS65004" in page.get_data(as_text=True)


def test_unregistered_certificate_is_explained(app, admin_client, registered, m365_emulator, m365_tenant):
    _post(admin_client, TAB + "/keys")
    links = set(re.findall(r"/configure/keys/([0-9a-f]{64})/public_key\.pem", admin_client.get(TAB).get_data(as_text=True)))
    result = app.test_cli_runner().invoke(args=["pbx365", "keys", "show", "acme", "--json"])
    new = next(k["sha256"] for k in json.loads(result.stdout) if not k["active"])
    assert new in links
    _post(admin_client, f"{TAB}/keys/{new}/activate")  # switched before uploading the new certificate to Entra
    result = app.test_cli_runner().invoke(args=["pbx365", "test-connection", "acme", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and "700027" in data["error"]


@pytest.mark.parametrize("algorithm,thumbprint_header", [("RS256", "x5t"), ("PS256", "x5t#S256")])
def test_graph_client_signs_with_the_tenants_key(app, registered, m365_emulator, m365_tenant, algorithm,
                                                  thumbprint_header):
    import base64
    from urllib.parse import parse_qs

    from flask_pbx365.connection import credentials_for
    from flask_pbx365.graph.client import GraphClient
    from flask_pbx365.graph.tokens import forget
    from flask_pbx365.keys import active_key_pair

    m365_emulator.patch_application(m365_tenant, registered, adminConsent=True)
    with app.app_context():
        creds = credentials_for("acme")
        key = active_key_pair("acme")
    forget(creds)
    headers: list[dict] = []

    def capture(response, **_):
        body = response.request.body or ""
        assertion = parse_qs(body.decode() if isinstance(body, bytes) else body).get("client_assertion")
        if assertion:
            headers.append(json.loads(base64.urlsafe_b64decode(assertion[0].split(".")[0] + "==")))

    with GraphClient(creds, algorithm=algorithm, max_backoff=1) as client:
        client.tokens._entry().http.session.hooks["response"].append(capture)
        names = sorted(u["userPrincipalName"].split("@")[0] for u in client.iter_items("/users"))
        assert "alice" in names and "carol" in names
        assert "User.Read.All" in client.token_roles()
    assert [h["alg"] for h in headers] == [algorithm]
    thumbprint = base64.urlsafe_b64decode(headers[0][thumbprint_header] + "==").hex()
    assert thumbprint == (key.sha1 if algorithm == "RS256" else key.sha256)
