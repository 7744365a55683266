"""The "Entra admin center" page: register an app, add a redirect URI, upload a certificate, consent."""
from __future__ import annotations

import re

from .conftest import session_for


def test_register_app_through_the_ui(m365_emulator, m365_tenant, cert):
    http = session_for(m365_emulator)
    ui = f"{m365_emulator.base_url}/_emulator/ui"
    page = http.post(f"{ui}/{m365_tenant}/apps", data={"displayName": "Acme PBX"})
    assert page.status_code == 200 and "Registered Acme PBX" in page.text
    app_id = re.search(r'data-app-id="([^"]+)"', page.text).group(1)
    http.post(f"{ui}/{m365_tenant}/apps/{app_id}/redirect-uris", data={"redirectUri": "https://portal.example/cb"})
    bad = http.post(f"{ui}/{m365_tenant}/apps/{app_id}/certificates",
                    files={"certificate": ("public_key.pem", b"not a pem")})
    assert bad.status_code == 400 and "BEGIN CERTIFICATE" in bad.text
    http.post(f"{ui}/{m365_tenant}/apps/{app_id}/certificates",
              files={"certificate": ("public_key.pem", cert.certificate_pem.encode())})
    http.post(f"{ui}/{m365_tenant}/apps/{app_id}/permissions", data={"permissions": ["User.Read.All", "Mail.Send"]})
    done = http.post(f"{ui}/{m365_tenant}/apps/{app_id}/consent")
    assert "Admin consent granted" in done.text
    app = m365_emulator.admin("GET", f"/tenants/{m365_tenant}/applications/{app_id}")
    assert app["redirectUris"] == ["https://portal.example/cb"] and len(app["certificates"]) == 1
    assert app["permissions"] == ["User.Read.All", "Mail.Send"] and app["adminConsent"] is True
