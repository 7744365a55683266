"""The admin's journey of the PortSIP and 3CX guides, step by step, in a real browser.

Debian's Chromium (Playwright, headless) drives the demo portal (a real HTTP server), the emulator's "Microsoft
Entra admin center" page and the nginx SBC, as an admin and a user would; a real ``flask pbx365 worker`` runs every
sync. Nothing is set up behind the admin's back except Microsoft's own state (the directory, and time passing for
the certificate). Each step leaves its screenshot in ``test-artifacts/journey/``.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from flask_pbx365.testing import PASSWORD, default_tenant_fixture
from tests.sso.live import serve
from tests.sync.test_runs_cli_and_tab import _stop, _worker

pytestmark = pytest.mark.timeout(420)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "journey"
BASE = "/admin/integrations/microsoft365"
PERMISSIONS = ["User.Read.All", "GroupMember.Read.All", "Contacts.Read", "MailboxSettings.Read", "Mail.Send",
               "Mail.ReadWrite", "Calendars.Read"]


class Journey:
    """The browser, the servers and the screenshots of one walk through the guides."""

    def __init__(self, page, portal: str, sbc: str, emulator, tid: str):
        self.page, self.portal, self.sbc, self.emulator, self.tid = page, portal, sbc, emulator, tid
        self.shots: list[str] = []

    def shot(self, name: str) -> None:
        path = ARTIFACTS / f"{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path.name)

    def tab(self, name: str) -> None:
        self.page.goto(f"{self.portal}{BASE}/{name}")

    def entra(self) -> None:
        self.page.goto(f"{self.emulator.base_url}/_emulator/ui?tenant={self.tid}")

    def app_section(self):
        return self.page.locator("section.app").first

    def submit(self, button) -> None:
        with self.page.expect_navigation():
            button.click()

    def check_now(self) -> dict[str, tuple[str, str]]:
        """Click "Check now" on the Overview; the health lines by name: (state, text of the line)."""
        self.tab("overview")
        self.submit(self.page.get_by_role("button", name="Check now"))
        return self.health()

    def health(self) -> dict[str, tuple[str, str]]:
        rows = self.page.locator("#pbx365-health tr[data-check]")
        return {rows.nth(i).get_attribute("data-check"): (rows.nth(i).get_attribute("data-state"),
                                                          rows.nth(i).inner_text())
                for i in range(rows.count())}

    def admin_sign_in(self) -> None:
        self.page.goto(f"{self.portal}/admin/login?tenant=acme")
        self.page.fill("input[name=username]", "admin@acme")
        self.page.fill("input[name=password]", "admin")
        self.submit(self.page.get_by_role("button", name="Sign in"))

    def wait_for_run_end(self) -> None:
        """The tab's live box shows the run to its end (a full bar when done), then the page reloads."""
        self.page.wait_for_selector("#pbx365-run", state="detached", timeout=90_000)


def _tenant_fixture() -> tuple[dict, dict[str, str]]:
    fixture = default_tenant_fixture()
    domain = fixture["tenant"]["domains"][0]
    reception = {"id": str(uuid.uuid4()), "userPrincipalName": f"reception@{domain}", "givenName": "Reception",
                 "displayName": "Reception", "mail": f"reception@{domain}", "accountEnabled": False,
                 "mailboxSettings": {"userPurpose": "shared"}}
    fixture["users"].append(reception)
    fixture["tenant"]["displayName"] = "Contoso Journey"
    return fixture, {u["userPrincipalName"].split("@")[0]: u["userPrincipalName"] for u in fixture["users"]}


def _age_certificate(app, tenant: str) -> str:
    """A year has passed: the active key pair's certificate (same key) expired yesterday. Returns its PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    from flask_pbx365.keys import private_key_pem
    from flask_pbx365.models import KeyPair
    from flask_pbx365.state import get_state

    with app.app_context():
        state = get_state()
        key_pem, cert_pem = private_key_pem(tenant)
        key = serialization.load_pem_private_key(key_pem, password=None)
        old = x509.load_pem_x509_certificate(cert_pem)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        cert = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(old.issuer)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=366)).not_valid_after(now - timedelta(days=1))
                .sign(key, hashes.SHA256()))
        row = state.db.session.query(KeyPair).filter_by(tenant=tenant, active=True).one()
        row.sha1, row.sha256 = cert.fingerprint(hashes.SHA1()).hex(), cert.fingerprint(hashes.SHA256()).hex()
        row.certificate_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        row.private_key_encrypted = state.vault.encrypt(key_pem, tenant=tenant, sha256=row.sha256)
        row.not_before, row.not_after = now - timedelta(days=366), now - timedelta(days=1)
        state.db.session.commit()
        return row.certificate_pem


@pytest.fixture
def journey(app, m365_emulator, nginx_path, tmp_path, browser):
    from demo_app.sbc.start import start, stop
    from tests.fixtures_services import free_port

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    fixture, upns = _tenant_fixture()
    tid = m365_emulator.create_tenant(fixture)
    server = serve(app)
    live = next(server)
    sbc = start(live.url, free_port(), directory=tmp_path / "sbc", public_host="localhost")
    app.config.update(DEMO_PUBLIC_URL=live.url, DEMO_SBC_URL=sbc.url)
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1366, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(20_000)
    trip = Journey(context.new_page(), live.url, sbc.url, m365_emulator, tid)
    trip.upns, trip.app, trip.context, trip.tmp = upns, app, context, tmp_path
    trip.worker = None
    try:
        yield trip
    finally:
        if trip.worker is not None:
            _stop(trip.worker)
        context.close()
        stop(sbc)
        server.close()


def test_the_admin_journey_of_the_guides(journey):
    j, page = journey, journey.page
    j.admin_sign_in()

    # 0. The integration opens on the Overview, which says what to do first.
    page.goto(f"{j.portal}{BASE}/")
    assert page.url.endswith(f"{BASE}/overview")
    assert j.health()["connection"][0] == "error"
    j.shot("overview-before-setup")

    # 1. Register the app in Entra, then copy both redirect URIs from the Configure tab into it.
    j.tab("configure")
    uris = [page.input_value("#pbx365-redirect-1"), page.input_value("#pbx365-redirect-2")]
    assert uris == [j.portal + "/integrations/microsoft365/oauth2/callback",
                    j.sbc + "/integrations/microsoft365/oauth2/callback"]
    j.entra()
    page.fill("#displayName", "PBX (journey)")
    j.submit(page.locator("#register"))
    for uri in uris:
        j.app_section().locator("input[name=redirectUri]").fill(uri)
        j.submit(j.app_section().locator("#add-redirect"))
    assert j.app_section().locator("li").all_inner_texts() == uris
    j.shot("entra-app-registered-with-redirect-uris")

    # 2. Paste the application (client) ID and the directory (tenant) ID into the Configure tab.
    client_id = j.app_section().locator(".app-id").inner_text()
    directory_id = page.locator("#tenant-id").inner_text()
    j.tab("configure")
    page.fill("#pbx365-client-id", client_id)
    page.fill("#pbx365-directory-id", directory_id)
    page.select_option("#pbx365-cloud", "custom")
    page.fill("#pbx365-login-url", j.emulator.base_url)
    page.fill("#pbx365-graph-url", j.emulator.base_url)
    page.fill("#pbx365-ca-bundle", j.emulator.ca_path)
    j.submit(page.locator("form").filter(has=page.locator("#pbx365-client-id")).get_by_role("button", name="Save"))
    assert page.input_value("#pbx365-client-id") == client_id
    j.shot("configure-ids-saved")

    # 3. Generate the key pair, download public_key.pem and upload it in Entra.
    j.submit(page.get_by_role("button", name="Generate new key pair"))
    assert page.locator("#keys table tbody tr").count() == 1
    with page.expect_download() as download:
        page.get_by_role("link", name="Download public_key.pem").click()
    assert download.value.suggested_filename == "public_key.pem"
    pem = j.tmp / "public_key.pem"
    download.value.save_as(pem)
    assert pem.read_text().startswith("-----BEGIN CERTIFICATE-----")
    j.shot("configure-key-pair")
    j.entra()
    j.app_section().locator("input[name=certificate]").set_input_files(str(pem))
    j.submit(j.app_section().locator("#upload-cert"))
    assert "Certificates: 1" in j.app_section().inner_text()

    # 4. Grant the permissions in Entra, and see the Overview turn green.
    for permission in PERMISSIONS:
        j.app_section().locator(f"input[name=permissions][value='{permission}']").check()
    j.submit(j.app_section().locator("#save-permissions"))
    j.submit(j.app_section().locator("#grant-consent"))
    assert j.app_section().locator(".consent").inner_text() == "Granted"
    j.shot("entra-permissions-granted")
    health = j.check_now()
    assert {name: health[name][0] for name in ("connection", "permissions", "certificate", "redirect_uris")} == {
        "connection": "ok", "permissions": "ok", "certificate": "ok", "redirect_uris": "ok"}, health
    assert "error" not in {state for state, _ in health.values()}, health
    j.shot("overview-green")

    # 5. Set the sync options, click Sync now and watch the bar reach 100%.
    j.tab("user-sync")
    page.fill("#pbx365-start", "300")
    j.submit(page.locator("#pbx365-user-sync-form").get_by_role("button", name="Save"))
    assert page.input_value("#pbx365-start") == "300"
    j.submit(page.get_by_role("button", name="Sync now"))
    run_id = re.search(r"run=([0-9a-f-]+)", page.url).group(1)
    assert page.locator("#pbx365-run [role=progressbar]").count() == 1  # queued: no worker yet
    j.worker = _worker(SimpleNamespace(app=j.app))
    page.wait_for_function("() => { const b = document.querySelector('#pbx365-run [role=progressbar]');"
                           " return b && b.getAttribute('aria-valuenow') === '100'; }", timeout=90_000)
    assert page.locator("#pbx365-run-status").inner_text() == "Done"
    page.wait_for_timeout(350)  # the bar's width transition
    j.shot("user-sync-100-percent")
    j.wait_for_run_end()
    assert page.locator(f"#run-{run_id} td").nth(1).inner_text() == "Done"

    # 6. The users are in the PBX, with extensions from 300.
    page.goto(f"{j.portal}/admin/users")
    listing = page.locator("main").inner_text()
    for name in ("Alice Anders", "Bob Brown", "Carol Clark"):
        assert name in listing
    assert "Gina Guest" not in listing  # members only (the default)
    assert "300" in listing
    j.shot("pbx-users")

    # 7. Enable Sign in with Microsoft; sign out; sign in on the web client, then again through the SBC domain.
    j.tab("sign-in")
    page.locator("input[name=enabled]").check()
    for target in ("admin", "web", "app"):
        page.locator(f"input[name=targets][value={target}]").check()
    j.submit(page.get_by_role("button", name="Save"))
    assert page.locator("input[name=enabled]").is_checked()
    j.shot("sign-in-enabled")
    j.submit(page.locator("header").get_by_role("button", name="Sign out"))
    for origin, name in ((j.portal, "web-client"), (j.sbc, "web-client-through-sbc")):
        page.context.clear_cookies()
        page.goto(f"{origin}/login?tenant=acme")
        page.get_by_role("link", name="Sign in with Microsoft").click()
        page.fill("#i0116", j.upns["alice"])
        page.fill("#i0118", PASSWORD)
        page.click("#idSIButton9")
        page.wait_for_url(f"{origin}/me")
        assert "Alice Anders" in page.content()
        j.shot(f"signed-in-{name}")
    page.context.clear_cookies()
    j.admin_sign_in()

    # 8. Pick a shared mailbox and sync contacts into the company phonebook.
    j.emulator.admin("POST", f"/tenants/{j.tid}/users/{j.upns['reception']}/contacts",
                     {"givenName": "Front", "surname": "Desk Supplier", "displayName": "Front Desk Supplier",
                      "businessPhones": ["+1 425 555 0199"]})
    j.tab("contacts")
    page.fill("#pbx365-shared", j.upns["reception"])
    j.submit(page.locator("#pbx365-contacts-form").get_by_role("button", name="Save"))
    j.submit(page.get_by_role("button", name="Sync now"))
    j.wait_for_run_end()
    j.shot("contacts-synced")
    page.goto(f"{j.portal}/admin/phonebook")
    assert "Front Desk Supplier" in page.locator("main").inner_text()
    j.shot("company-phonebook")

    # 9. Send a test mail through Microsoft 365.
    j.tab("mail")
    page.locator("input[name=enabled]").check()
    page.fill("#pbx365-mail-sender", j.upns["admin"])
    j.submit(page.get_by_role("button", name="Save"))
    page.fill("#pbx365-mail-to", j.upns["carol"])
    j.submit(page.get_by_role("button", name="Send test email"))
    for _ in range(60):
        if page.locator("tr[data-status=sent]").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.locator("tr[data-status=sent]").count() == 1
    assert [m["to"] for m in j.emulator.outbox(j.tid)] == [[j.upns["carol"]]]
    j.shot("mail-sent")

    # 10. Enable presence from calendars (Outlook "Show as").
    j.tab("presence")
    page.locator("input[name=enabled]").check()
    j.submit(page.get_by_role("button", name="Save"))
    assert page.locator("input[name=enabled]").is_checked()
    j.shot("presence-enabled")

    # 11. Break something, and see the Overview name the fix: first a revoked permission ...
    j.entra()
    j.app_section().locator("input[name=permissions][value='Contacts.Read']").uncheck()
    j.submit(j.app_section().locator("#save-permissions"))
    health = j.check_now()
    state, line = health["permissions"]
    assert state == "error" and "Grant admin consent for Contacts.Read" in line, health
    assert page.locator("#pbx365-health-state").inner_text() == "Something needs your attention."
    j.shot("overview-permission-revoked")
    # ... then a year passes and the certificate expires.
    j.emulator.patch_application(j.tid, client_id, certificates=[_age_certificate(j.app, "acme")])
    health = j.check_now()
    state, line = health["connection"]
    assert state == "error" and "AADSTS1000502" in line and "generate a new key pair" in line, health
    state, line = health["certificate"]
    assert state == "error" and "expired" in line and "Generate a new key pair" in line, health
    j.shot("overview-certificate-expired")

    assert len(j.shots) == 17
