"""Parts of the Graph client that need no server: Retry-After, permission tables, links, consent URL."""
from __future__ import annotations

import email.utils
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest

from flask_pbx365.clouds import CLOUDS, resolve_cloud
from flask_pbx365.exceptions import (ConfigurationError, DeltaTokenExpiredError, FeatureUnavailableError,
                                     NotFoundError, PermissionMissingError, UnsafeLinkError)
from flask_pbx365.features import FEATURES
from flask_pbx365.graph import (AppCredentials, GraphClient, admin_consent_url,
                                feature_status, permission_for)
from flask_pbx365.graph.errors import error_for
from flask_pbx365.graph.retry import RetryPolicy, parse_retry_after

from .conftest import make_key_pair


def test_retry_after_seconds_fractional_and_http_date():
    assert parse_retry_after("2.128") == pytest.approx(2.128)
    assert parse_retry_after("7") == 7
    now = time.time()
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_capped_full_jitter():
    policy = RetryPolicy(max_retries=10, max_backoff=2.0, base=1.0)
    delays = [policy.backoff(9) for _ in range(200)]
    assert all(0 <= d <= 2.0 for d in delays)
    assert max(delays) > 1.0 and min(delays) < 1.0  # jittered over the whole range, not a constant
    assert policy.delay(9, "0.25") == 0.25  # the server's Retry-After wins over backoff


CHECKS = {name: alts for feature in FEATURES for name, alts in feature.permissions.items()}


def test_feature_status_partial_grants():
    status = feature_status(["User.Read.All", "Contacts.ReadWrite"], CHECKS)
    assert status["user_sync"] == {"ok": True, "missing": []}
    assert status["photos"]["ok"] and status["contacts"]["ok"]  # ReadWrite includes Read
    assert status["shared_mailboxes"] == {"ok": False, "missing": ["MailboxSettings.Read"]}
    assert status["mail"] == {"ok": False, "missing": ["Mail.Send"]}
    assert status["group_filter"] == {"ok": False, "missing": ["GroupMember.Read.All"]}
    assert set(status) == {
        "user_sync", "photos", "group_filter", "contacts", "shared_mailboxes", "mail", "calendar",
        "phone_write_back", "teams_presence"}
    assert status["teams_presence"] == {"ok": False, "missing": ["Presence.Read.All", "Presence.ReadWrite.All"]}
    assert feature_status(["User.ReadWrite.All"], CHECKS)["phone_write_back"]["ok"]
    assert feature_status([], CHECKS)["user_sync"] == {"ok": False, "missing": ["User.ReadBasic.All"]}


@pytest.mark.parametrize("method, path, permission", [
    ("GET", "/users/abc/contactFolders/f1/contacts/delta", "Contacts.Read"),
    ("GET", "/users/abc/photo/$value", "ProfilePhoto.Read.All"),
    ("GET", "/users/abc/mailboxSettings/userPurpose", "MailboxSettings.Read"),
    ("POST", "/users/abc/sendMail", "Mail.Send"),
    ("GET", "/users/abc/calendarView/delta", "Calendars.Read"),
    ("PATCH", "/users/abc", "User-Phone.ReadWrite.All"),
    ("GET", "/groups/g1/transitiveMembers", "GroupMember.Read.All"),
    ("GET", "/users/delta", "User.Read.All"),
])
def test_permission_table(method, path, permission):
    assert permission_for(method, path)[0] == permission


def test_403_names_the_permission_and_what_to_do():
    error = error_for(403, {"error": {"code": "ErrorAccessDenied", "message": "Access is denied.",
                                      "innerError": {"request-id": "rid-1"}}}, {}, "GET",
                      "https://graph.microsoft.com/v1.0/users/u1/contacts?$top=10")
    assert isinstance(error, PermissionMissingError)
    assert error.permission == "Contacts.Read" and error.request_id == "rid-1"
    assert "Missing application permission Contacts.Read" in str(error)
    assert "grant admin consent" in str(error)


def test_error_contexts():
    url = "https://graph.microsoft.com/v1.0/users/u1/contactFolders/f/contacts/delta"
    assert isinstance(error_for(404, None, {}, "GET", url), NotFoundError)
    assert isinstance(error_for(410, None, {}, "GET", url + "?$deltatoken=x", context="delta-continue"),
                      DeltaTokenExpiredError)
    body = {"error": {"code": "syncStateNotFound", "message": "gone"}}
    assert isinstance(error_for(400, body, {}, "GET", url, context="delta-continue"), DeltaTokenExpiredError)
    assert isinstance(error_for(501, None, {}, "GET", url, context="delta-start"), FeatureUnavailableError)
    assert isinstance(error_for(400, None, {}, "GET", url, context="delta-start"), FeatureUnavailableError)


def _credentials(cloud) -> AppCredentials:
    key, cert = make_key_pair()
    return AppCredentials("t1", "client", "dir", cloud, key, cert)


def test_links_must_stay_on_the_graph_host():
    cloud = resolve_cloud("custom", login_url="https://login.test:8443", graph_url="https://graph.test:8443")
    client = GraphClient(_credentials(cloud))  # no network until a call is made
    assert client.url_for("/users") == "https://graph.test:8443/v1.0/users"
    assert client.check_link("https://GRAPH.test:8443/v1.0/users?$skiptoken=x")
    for bad in ("https://evil.example/v1.0/users", "http://graph.test:8443/v1.0/users",
                "https://graph.test:9443/v1.0/users", "https://graph.test/v1.0/users",
                "https://user:pw@graph.test:8443/v1.0/users"):
        with pytest.raises(UnsafeLinkError):
            client.get(bad)
    client.close()


def test_admin_consent_url():
    url = admin_consent_url(CLOUDS["usgov"], "app-id", "dir-id", "https://pbx.example/cb", "st8")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://login.microsoftonline.us/dir-id/adminconsent"
    assert parse_qs(parts.query) == {"client_id": ["app-id"], "state": ["st8"],
                                     "redirect_uri": ["https://pbx.example/cb"]}
    creds = _credentials(CLOUDS["global"])
    assert admin_consent_url(creds, redirect_uri="https://x/cb", state="s").startswith(
        "https://login.microsoftonline.com/dir/adminconsent?client_id=client&state=s")


def test_missing_ca_bundle_file_is_a_configuration_error(tmp_path):
    cloud = resolve_cloud("custom", login_url="https://l.test", graph_url="https://g.test",
                          ca_bundle=str(tmp_path / "nope.pem"))
    with pytest.raises(ConfigurationError, match="CA bundle"):
        GraphClient(_credentials(cloud))


def test_credentials_repr_hides_key_material():
    creds = _credentials(CLOUDS["global"])
    assert "PRIVATE" not in repr(creds) and "client" in repr(creds)
    assert len(creds.sha256_thumbprint) == 64 and len(creds.sha1_thumbprint) == 40


class _Built(Exception):
    """Raised by the recording MSAL class so that no request leaves this machine."""


@pytest.mark.parametrize("cloud_name", ["global", "usgov", "china", "custom"])
def test_msal_app_per_cloud(monkeypatch, tmp_path, cloud_name):
    """MSAL gets the tenant's own authority, a trust store from the configuration, its own token cache, and
    instance discovery is switched off for the custom cloud only (real clouds keep MSAL's authority checks)."""
    import certifi
    import msal

    from flask_pbx365.graph.tokens import TokenProvider

    seen: list[dict] = []

    class Recording(msal.ConfidentialClientApplication):
        def __init__(self, client_id, **kw):
            seen.append({"client_id": client_id, **kw})
            raise _Built()

    monkeypatch.setattr(msal, "ConfidentialClientApplication", Recording)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "env-ca.pem"))
    ca = tmp_path / "ca.pem"
    ca.write_text("not used: nothing is sent")
    cloud = (resolve_cloud("custom", login_url="https://login.test", graph_url="https://graph.test",
                           ca_bundle=str(ca)) if cloud_name == "custom" else CLOUDS[cloud_name])
    creds = _credentials(cloud)
    other_tenant = replace(creds, tenant_key="t2")
    for each in (creds, other_tenant):
        with pytest.raises(_Built):
            TokenProvider(each).get()
    first, second = seen
    assert first["authority"] == f"{cloud.login_url}/dir"
    assert first["instance_discovery"] is (False if cloud_name == "custom" else None)
    assert first["http_client"].verify == (str(ca) if cloud_name == "custom" else certifi.where())
    assert isinstance(first["token_cache"], msal.TokenCache)
    assert first["token_cache"] is not second["token_cache"]  # a cache per tenant app, never shared
    assert first["client_credential"]["public_certificate"].startswith("-----BEGIN CERTIFICATE-----")
