"""The ID-token half of the negative matrix, through the portal's real callback and code redemption.

The provider is :mod:`tests.sso.fake_entra`: the test's own RSA keys in a local JWKS over HTTPS, and a token
endpoint answering with the ID token each test mints.
"""
from __future__ import annotations

import time
import uuid

import pytest

from .conftest import Browser, query
from .fake_entra import FakeEntra, SigningKey, unsigned

CALLBACK = "/integrations/microsoft365/oauth2/callback"


@pytest.fixture(scope="module")
def fake_entra(tmp_path_factory):
    server = FakeEntra(tmp_path_factory.mktemp("fake-entra"))
    yield server
    server.stop()


class Rig:
    def __init__(self, app, fake: FakeEntra, tid: str, oid: str, client_id: str):
        self.app, self.fake, self.tid, self.oid, self.client_id = app, fake, tid, oid, client_id

    def attempt(self, mint):
        """Start sign-in, let the token endpoint answer with ``mint(defaults, nonce)``; the portal's answer."""
        browser = Browser(self)
        params = query(browser.start("/integrations/microsoft365/sign-in/acme/web"))
        self.fake.next_id_token = lambda defaults: mint({**defaults, "oid": self.oid, "name": "Alice",
                                                         "nonce": params["nonce"]})
        answer = browser.portal("GET", f"{CALLBACK}?code=any-code&state={params['state']}")
        signed_in = browser.portal("GET", "/me").status_code == 200
        return answer, signed_in

    #: Browser's requests session for Microsoft's pages is not used here (nothing is signed in interactively).
    emulator = type("NoEmulator", (), {"ca_path": None})()


@pytest.fixture
def rig(app, fake_entra, monkeypatch):
    from demo_app.host import DemoHost
    from flask_pbx365.keys import generate_key_pair
    from flask_pbx365.models import UserLink
    from flask_pbx365.settings import import_settings
    from flask_pbx365.sso import oidc
    from flask_pbx365.state import get_state

    oidc.forget()
    tid, oid, client_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    with app.app_context():
        generate_key_pair("acme")
        import_settings("acme", {
            "configure": {"client_id": client_id, "directory_id": tid, "cloud": "custom",
                          "login_url": fake_entra.base_url, "graph_url": fake_entra.base_url,
                          "ca_bundle": fake_entra.ca_path},
            "sign_in": {"enabled": True, "who": "all", "targets": ["web"]}})
        alice = next(u for u in DemoHost().list_users("acme") if u.username == "alice@acme")
        db = get_state().db
        db.session.add(UserLink(tenant="acme", directory_id=tid, object_id=oid, host_user_id=alice.id))
        db.session.commit()
    return Rig(app, fake_entra, tid, oid, client_id)


def good(rig):
    key = rig.fake.keys[0]
    return lambda claims: key.sign(claims)


def test_a_valid_token_signs_in_and_the_client_used_its_certificate(rig):
    answer, signed_in = rig.attempt(good(rig))
    assert answer.status_code == 302 and signed_in
    sent = rig.fake.token_requests[-1]
    assert sent["header"]["alg"] == "PS256" and sent["header"]["x5t#S256"]
    assert "client_secret" not in sent and sent["code_verifier"] and sent["grant_type"] == "authorization_code"


def refused(answer, signed_in, words: str) -> None:
    page = answer.get_data(as_text=True)
    assert answer.status_code == 401, page[:600]
    assert words in page
    assert not signed_in


def test_token_for_another_tenant(rig):
    other = str(uuid.uuid4())
    key = rig.fake.keys[0]
    answer, signed_in = rig.attempt(lambda c: key.sign({**c, "tid": other,
                                                        "iss": f"{rig.fake.base_url}/{other}/v2.0"}))
    refused(answer, signed_in, "not this tenant")
    # Right issuer, but another directory's tid.
    answer, signed_in = rig.attempt(lambda c: key.sign({**c, "tid": other}))
    refused(answer, signed_in, "not the configured")


def test_wrong_audience(rig):
    key = rig.fake.keys[0]
    answer, signed_in = rig.attempt(lambda c: key.sign({**c, "aud": str(uuid.uuid4())}))
    refused(answer, signed_in, "meant for")


def test_expired_token(rig):
    key = rig.fake.keys[0]
    past = int(time.time()) - 4000
    answer, signed_in = rig.attempt(lambda c: key.sign({**c, "iat": past, "nbf": past, "exp": past + 3600}))
    refused(answer, signed_in, "expired")


def test_token_from_the_future(rig):
    key = rig.fake.keys[0]
    future = int(time.time()) + 3600
    answer, signed_in = rig.attempt(lambda c: key.sign({**c, "iat": future, "nbf": future, "exp": future + 3600}))
    refused(answer, signed_in, "not valid yet")


def test_bad_signature(rig):
    impostor = SigningKey()
    impostor.kid = rig.fake.keys[0].kid  # claims to be the published key
    answer, signed_in = rig.attempt(lambda c: impostor.sign(c))
    refused(answer, signed_in, "signature")


def test_alg_none(rig):
    answer, signed_in = rig.attempt(lambda c: unsigned(c))
    refused(answer, signed_in, "only RS256")


def test_nonce_mismatch(rig):
    key = rig.fake.keys[0]
    answer, signed_in = rig.attempt(lambda c: key.sign({**c, "nonce": "someone-elses-nonce"}))
    refused(answer, signed_in, "nonce")
    answer, signed_in = rig.attempt(lambda c: key.sign({k: v for k, v in c.items() if k != "nonce"}))
    refused(answer, signed_in, "nonce")


def test_unknown_kid_refetches_the_key_set(rig):
    assert rig.attempt(good(rig))[1]  # the key set is now cached
    rolled = SigningKey()
    rig.fake.keys.append(rolled)
    try:
        answer, signed_in = rig.attempt(lambda c: rolled.sign(c))
        assert answer.status_code == 302 and signed_in
        stranger = SigningKey()  # never published
        refused(*rig.attempt(lambda c: stranger.sign(c)), "does not publish")
    finally:
        rig.fake.keys.remove(rolled)


def test_21vianet_issuer_host_alias_is_accepted_for_that_cloud_only(fake_entra):
    """21Vianet's discovery at login.chinacloudapi.cn names a login.partner.microsoftonline.cn issuer; ID tokens
    must then carry exactly that issuer. Other clouds accept no alias."""
    from flask_pbx365.clouds import Cloud
    from flask_pbx365.exceptions import ConfigurationError, SignInError
    from flask_pbx365.sso.oidc import Provider, forget

    tid, client_id = str(uuid.uuid4()), str(uuid.uuid4())
    forget()
    fake_entra.issuer_host = "login.partner.microsoftonline.cn"
    try:
        china = Provider(Cloud("china", "China (21Vianet)", fake_entra.base_url, fake_entra.base_url,
                               fake_entra.ca_path), tid)
        assert china.issuer == f"https://login.partner.microsoftonline.cn/{tid}/v2.0"
        now = int(time.time())
        claims = {"iss": china.issuer, "tid": tid, "aud": client_id, "oid": str(uuid.uuid4()), "iat": now,
                  "nbf": now, "exp": now + 3600, "nonce": "n-1", "sub": "pairwise"}
        key = fake_entra.keys[0]
        assert china.validate_id_token(key.sign(claims), client_id=client_id, nonce="n-1")["tid"] == tid
        with pytest.raises(SignInError, match="not this tenant"):
            china.validate_id_token(key.sign({**claims, "iss": china.authority}), client_id=client_id, nonce="n-1")
        forget()
        custom = Provider(Cloud("custom", "Custom", fake_entra.base_url, fake_entra.base_url, fake_entra.ca_path),
                          tid)
        with pytest.raises(ConfigurationError, match="names the issuer"):
            custom.metadata
    finally:
        fake_entra.issuer_host = None
        forget()
