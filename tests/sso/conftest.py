"""Sign in with Microsoft test rig: the demo portal (acme) connected to the emulator, and a browser-like driver.

``sso`` connects tenant ``acme`` to a fresh emulator tenant (custom cloud, the tenant's own key pair uploaded as the
app's certificate, both redirect URIs registered); :meth:`SSOEnv.sync_users` links PBX users to Entra users by
running a real user sync (an RQ worker executing the job against the emulator). ``Browser`` walks the real flow:
portal (Flask test client) -> emulator sign-in page (HTTPS, its form posted like a person) -> portal callback.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from flask_pbx365.testing import PASSWORD

PORTAL = "http://portal.test"
SBC = "https://sbc.test:8444"
CALLBACK = "/integrations/microsoft365/oauth2/callback"


@dataclass
class SSOEnv:
    app: Any
    emulator: Any
    tid: str
    app_id: str
    users: dict[str, dict] = field(default_factory=dict)      # Entra users by short name
    host_ids: dict[str, str] = field(default_factory=dict)    # PBX usernames -> host user ids

    def upn(self, name: str) -> str:
        return self.users[name]["userPrincipalName"]

    def oid(self, name: str) -> str:
        return self.users[name]["id"]

    def sync_users(self, **user_sync: Any) -> dict[str, str]:
        """Run a real user sync (a run enqueued, executed by an RQ worker) and return the links it made:
        Entra short name -> PBX user id. Options as on the User Sync tab (default: every member)."""
        from flask_pbx365.runs.queue import make_worker
        from flask_pbx365.models import UserLink
        from flask_pbx365.settings import import_settings
        from flask_pbx365.state import get_state
        from flask_pbx365.runs import get_run, request_run

        with self.app.app_context():
            if user_sync:
                import_settings("acme", {"user_sync": user_sync})
            run_id = request_run("acme", "users").id
        make_worker(self.app).work(burst=True)
        with self.app.app_context():
            run = get_run("acme", run_id)
            assert run.status == "done", (run.status, run.message)
            links = get_state().db.session.scalars(sa.select(UserLink).where(
                UserLink.tenant == "acme", UserLink.state == "active")).all()
        by_oid = {link.object_id: link.host_user_id for link in links}
        return {name: by_oid[user["id"]] for name, user in self.users.items() if user["id"] in by_oid}

    def settings(self, **sign_in: Any) -> None:
        from flask_pbx365.settings import import_settings

        with self.app.app_context():
            import_settings("acme", {"sign_in": sign_in})


@pytest.fixture(autouse=True)
def _ci_trust_environment(monkeypatch):
    """As on CI: requests' CA variables point at a bundle without the emulator's CA. The portal must still trust
    the emulator, through the tenant's configured CA bundle passed explicitly on each request."""
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())


@pytest.fixture
def sso(app, m365_emulator, m365_tenant) -> SSOEnv:
    from demo_app.host import DemoHost
    from flask_pbx365.keys import certificate_pem, generate_key_pair
    from flask_pbx365.settings import import_settings
    from flask_pbx365.sso import oidc

    oidc.forget()
    with app.app_context():
        info = generate_key_pair("acme")
        cert = certificate_pem("acme", info.sha256).decode()
        host_ids = {u.username: u.id for u in DemoHost().list_users("acme")}
    app_id = m365_emulator.add_application(
        m365_tenant, displayName="Demo PBX", redirectUris=[PORTAL + CALLBACK, SBC + CALLBACK], certificates=[cert],
        permissions=["User.Read.All", "GroupMember.Read.All"], adminConsent=True)
    with app.app_context():
        import_settings("acme", {
            "configure": {"client_id": app_id, "directory_id": m365_tenant, "cloud": "custom",
                          "login_url": m365_emulator.base_url, "graph_url": m365_emulator.base_url,
                          "ca_bundle": m365_emulator.ca_path},
            "sign_in": {"enabled": True, "who": "all", "targets": ["admin", "web", "app"],
                        "mode": "microsoft_or_password", "app_redirect_uris": ["pbxapp://auth", "http://127.0.0.1/cb"]},
        })
    users = {u["userPrincipalName"].split("@")[0]: u
             for u in m365_emulator.admin("GET", f"/tenants/{m365_tenant}/users")}
    return SSOEnv(app, m365_emulator, m365_tenant, app_id, users, host_ids)


class Browser:
    """A person's browser: the portal through a Flask test client, Microsoft through a requests session."""

    def __init__(self, env: SSOEnv, base_url: str = PORTAL, environ: dict | None = None):
        import requests

        self.env = env
        self.client = env.app.test_client()
        self.base_url = base_url
        self.environ = environ or {}
        self.ms = requests.Session()
        # Not ``Session.verify``: requests lets REQUESTS_CA_BUNDLE (set on CI) override it, but not a per-request
        # ``verify``. Only this browser needs the emulator's CA; the portal must trust it from its own settings.
        self.ms.request = functools.partial(self.ms.request, verify=env.emulator.ca_path)  # type: ignore[method-assign]

    def portal(self, method: str, url: str, **kw: Any):
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}" if parts.netloc else self.base_url
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.client.open(path, method=method, base_url=base, environ_base=self.environ, **kw)

    def start(self, url: str) -> str:
        """GET a portal URL that starts sign-in; returns Microsoft's authorize URL it redirects to."""
        response = self.portal("GET", url)
        assert response.status_code == 302, response.get_data(as_text=True)[:800]
        return response.headers["Location"]

    def microsoft_sign_in(self, authorize_url: str, username: str, password: str = PASSWORD) -> str:
        """Sign in on the emulator's page; returns the redirect URI with code and state it sends back."""
        page = self.ms.get(authorize_url, allow_redirects=False, timeout=30)
        if page.status_code == 302:  # already signed in to Microsoft (SSO cookie)
            return page.headers["Location"]
        assert page.status_code == 200, page.text[:800]
        action = unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
        fields = {unescape(k): unescape(v) for k, v in
                  re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)}
        fields.update(loginfmt=username, passwd=password)
        answer = self.ms.post(self.env.emulator.base_url + action, data=fields, allow_redirects=False, timeout=30)
        assert answer.status_code == 302, answer.text[:800]
        return answer.headers["Location"]

    def sign_in(self, start_url: str, username: str):
        """The whole round trip; returns the portal's answer to the callback."""
        back = self.microsoft_sign_in(self.start(start_url), username)
        return self.portal("GET", back)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
