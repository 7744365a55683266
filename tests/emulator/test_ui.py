"""The "Entra admin center" page: a person registers an app, adds a redirect URI, uploads the certificate,
selects permissions and grants consent, using only the forms the page shows; MSAL then gets a token with them."""
from __future__ import annotations

import re
from urllib.parse import urljoin

import jwt
import msal

from .conftest import session_for


class Page:
    """The admin center as a browser without JavaScript sees it: its forms, found by their submit button id."""

    def __init__(self, http, url: str):
        self.http, self.url = http, url
        self.html = http.get(url).text

    def form(self, button_id: str, app_id: str | None = None) -> tuple[str, list[str]]:
        """(absolute action URL, field names) of the form holding button ``button_id`` (in ``app_id``'s section)."""
        html = self.html
        if app_id:
            html = html[html.index(f'data-app-id="{app_id}"'):]
        forms = re.findall(r'<form method="post"[^>]*action="([^"]+)"[^>]*>(.*?)</form>', html, re.S)
        action, body = next((a, b) for a, b in forms if f'id="{button_id}"' in b)
        return urljoin(self.url, action.replace("&amp;", "&")), re.findall(r'name="([^"]+)"', body)

    def submit(self, button_id: str, app_id: str | None = None, **kw):
        action, _ = self.form(button_id, app_id)
        answer = self.http.post(action, **kw)
        self.html, self.url = answer.text, answer.url
        return answer


def test_register_app_through_the_ui(m365_emulator, m365_tenant, cert):
    http = session_for(m365_emulator)
    page = Page(http, f"{m365_emulator.base_url}/_emulator/ui?tenant={m365_tenant}")
    assert f'<code id="tenant-id">{m365_tenant}</code>' in page.html
    assert page.form("register")[1] == ["displayName"]
    done = page.submit("register", data={"displayName": "Acme PBX"})
    assert done.status_code == 200 and "Registered Acme PBX" in done.text
    app_id = re.search(r'data-app-id="([^"]+)"[^>]*>\s*<h3>Acme PBX</h3>', page.html).group(1)

    assert page.form("add-redirect", app_id)[1] == ["redirectUri"]
    page.submit("add-redirect", app_id, data={"redirectUri": "https://portal.example/cb"})
    assert "Redirect URI added" in page.html and "https://portal.example/cb" in page.html

    bad = page.submit("upload-cert", app_id, files={"certificate": ("public_key.pem", b"not a pem")})
    assert bad.status_code == 400 and "BEGIN CERTIFICATE" in bad.text
    page = Page(http, f"{m365_emulator.base_url}/_emulator/ui?tenant={m365_tenant}")
    assert page.form("upload-cert", app_id)[1] == ["certificate"]
    page.submit("upload-cert", app_id, files={"certificate": ("public_key.pem", cert.certificate_pem.encode())})
    assert "Certificate uploaded" in page.html

    offered = set(re.findall(r'name="permissions" value="([^"]+)"',
                             page.html[page.html.index(f'data-app-id="{app_id}"'):]))
    assert {"User.ReadBasic.All", "User.Read.All", "GroupMember.Read.All", "Contacts.Read", "MailboxSettings.Read",
            "Mail.Send", "Mail.ReadWrite", "Calendars.Read", "User-Phone.ReadWrite.All"} <= offered
    page.submit("save-permissions", app_id, data={"permissions": ["User.Read.All", "Mail.Send"]})
    assert "Not granted" in page.html[page.html.index(f'data-app-id="{app_id}"'):]
    page.submit("grant-consent", app_id)
    assert "Admin consent granted" in page.html

    app = m365_emulator.admin("GET", f"/tenants/{m365_tenant}/applications/{app_id}")
    assert app["redirectUris"] == ["https://portal.example/cb"] and len(app["certificates"]) == 1
    assert app["permissions"] == ["User.Read.All", "Mail.Send"] and app["adminConsent"] is True
    msal_app = msal.ConfidentialClientApplication(
        app_id, client_credential={"private_key": cert.private_key_pem, "public_certificate": cert.certificate_pem},
        authority=f"{m365_emulator.base_url}/{m365_tenant}", http_client=session_for(m365_emulator),
        instance_discovery=False)
    result = msal_app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    roles = jwt.decode(result["access_token"], options={"verify_signature": False})["roles"]
    assert sorted(roles) == ["Mail.Send", "User.Read.All"]

    # As in the Azure portal: removing a granted permission revokes it at once; one added waits for consent.
    page.submit("save-permissions", app_id, data={"permissions": ["User.Read.All", "Contacts.Read"]})
    assert "Grant admin consent for Contacts.Read." in page.html
    assert _roles(m365_emulator, m365_tenant, app_id, cert) == ["User.Read.All"]
    page.submit("grant-consent", app_id)
    assert _roles(m365_emulator, m365_tenant, app_id, cert) == ["Contacts.Read", "User.Read.All"]


def _roles(em, tid: str, app_id: str, cert) -> list[str]:
    """The roles of a fresh app-only token (a new MSAL app: no cached token)."""
    msal_app = msal.ConfidentialClientApplication(
        app_id, client_credential={"private_key": cert.private_key_pem, "public_certificate": cert.certificate_pem},
        authority=f"{em.base_url}/{tid}", http_client=session_for(em), instance_discovery=False)
    result = msal_app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    return sorted(jwt.decode(result["access_token"], options={"verify_signature": False}).get("roles", []))
