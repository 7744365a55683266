"""Entra: MSAL client credentials with certificates, AADSTS errors, the authorization code flow, admin consent."""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest

from flask_pbx365.testing import PASSWORD, make_certificate

from .conftest import assertion, session_for

GRAPH = "https://graph.microsoft.com/.default"


class RecordingSession:
    """A requests-compatible session for MSAL that remembers what MSAL posted."""

    def __init__(self, em):
        self.inner = session_for(em)
        self.posts = []

    def get(self, url, **kw):
        return self.inner.get(url, **kw)

    def post(self, url, **kw):
        self.posts.append(kw.get("data") or {})
        return self.inner.post(url, **kw)

    def close(self):
        self.inner.close()


def _msal(em, tid, app_id, credential, http=None):
    return msal.ConfidentialClientApplication(app_id, client_credential=credential, authority=f"{em.base_url}/{tid}",
                                              http_client=http or session_for(em), instance_discovery=False)


def _jwks_key(em, tid, token):
    keys = session_for(em).get(f"{em.base_url}/{tid}/discovery/v2.0/keys").json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in keys if k["kid"] == kid)
    assert jwk["x5t"] and jwk["x5c"]
    return jwt.algorithms.RSAAlgorithm.from_jwk(jwk)


def test_msal_rs256_thumbprint_token_works_on_graph(m365_emulator, m365_tenant, cert):
    app_id = m365_emulator.add_application(m365_tenant, displayName="PBX", certificates=[cert.certificate_pem],
                                           permissions=["User.Read.All"], adminConsent=True)
    http = RecordingSession(m365_emulator)
    result = _msal(m365_emulator, m365_tenant, app_id, {"private_key": cert.private_key_pem,
                                                         "thumbprint": cert.sha1}, http).acquire_token_for_client([GRAPH])
    assert result.get("token_type") == "Bearer", result
    assert result["expires_in"] > 3000
    header = jwt.get_unverified_header(http.posts[-1]["client_assertion"])
    assert header["alg"] == "RS256" and "x5t" in header
    token = result["access_token"]
    claims = jwt.decode(token, _jwks_key(m365_emulator, m365_tenant, token), algorithms=["RS256"],
                        audience="https://graph.microsoft.com")
    assert claims["roles"] == ["User.Read.All"]
    assert claims["tid"] == m365_tenant and claims["appid"] == app_id
    assert claims["iss"] == f"https://sts.windows.net/{m365_tenant}/"
    assert claims["exp"] - claims["iat"] == 3599
    r = session_for(m365_emulator).get(f"{m365_emulator.base_url}/v1.0/users",
                                       headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and len(r.json()["value"]) == 6


def test_msal_ps256_with_public_certificate(m365_emulator, m365_tenant, cert):
    app_id = m365_emulator.add_application(m365_tenant, certificates=[cert.certificate_pem],
                                           permissions=["User.ReadBasic.All"], adminConsent=True)
    http = RecordingSession(m365_emulator)
    result = _msal(m365_emulator, m365_tenant, app_id, {"private_key": cert.private_key_pem,
                                                         "public_certificate": cert.certificate_pem},
                   http).acquire_token_for_client([GRAPH])
    assert "access_token" in result, result
    header = jwt.get_unverified_header(http.posts[-1]["client_assertion"])
    assert header["alg"] == "PS256" and "x5t#S256" in header and "x5c" in header


def test_msal_unregistered_certificate_700027(m365_emulator, m365_tenant, cert):
    app_id = m365_emulator.add_application(m365_tenant, certificates=[cert.certificate_pem], adminConsent=True)
    other = make_certificate()
    result = _msal(m365_emulator, m365_tenant, app_id, {"private_key": other.private_key_pem,
                                                         "thumbprint": other.sha1}).acquire_token_for_client([GRAPH])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]
    assert result["error_description"].startswith("AADSTS700027:")
    assert "Trace ID:" in result["error_description"] and result["correlation_id"]


def test_msal_expired_registered_certificate_1000502(m365_emulator, m365_tenant):
    import datetime as dt

    expired = make_certificate(days=365, not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=366))
    app_id = m365_emulator.add_application(m365_tenant, certificates=[expired.certificate_pem], adminConsent=True,
                                           permissions=["User.Read.All"])
    result = _msal(m365_emulator, m365_tenant, app_id, {"private_key": expired.private_key_pem,
                                                         "thumbprint": expired.sha1}).acquire_token_for_client([GRAPH])
    assert result["error"] == "invalid_client" and result["error_codes"] == [1000502]
    assert "not within its specified validity window" in result["error_description"]


def test_msal_wrong_tenant_90002(m365_emulator, cert):
    with pytest.raises(ValueError) as info:
        _msal(m365_emulator, "00000000-0000-0000-0000-00000000dead", "x", {"private_key": cert.private_key_pem,
                                                                         "thumbprint": cert.sha1})
    assert "AADSTS90002" in str(info.value.__context__)
    r = session_for(m365_emulator).post(f"{m365_emulator.base_url}/nowhere.example/oauth2/v2.0/token",
                                        data={"grant_type": "client_credentials", "client_id": "x"})
    assert r.status_code == 400 and r.json()["error_codes"] == [90002]


def test_unknown_app_and_missing_consent(m365_emulator, m365_tenant, cert):
    endpoint = f"{m365_emulator.base_url}/{m365_tenant}/oauth2/v2.0/token"
    http = session_for(m365_emulator)
    r = http.post(endpoint, data={"grant_type": "client_credentials", "client_id": "11111111-2222-3333-4444-555555555555",
                                  "scope": GRAPH})
    assert r.json()["error_codes"] == [700016] and r.json()["error"] == "unauthorized_client"
    app_id = m365_emulator.add_application(m365_tenant, certificates=[cert.certificate_pem],
                                           permissions=["User.Read.All"], adminConsent=False)
    form = {"grant_type": "client_credentials", "client_id": app_id, "scope": GRAPH,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion(cert, app_id, endpoint)}
    token = http.post(endpoint, data=form).json()["access_token"]
    assert "roles" not in jwt.decode(token, options={"verify_signature": False})
    r = http.get(f"{m365_emulator.base_url}/v1.0/users", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"
    r = http.post(endpoint, data={**form, "scope": "User.Read.All"})
    assert r.json()["error"] == "invalid_scope"


def test_assertion_rules(m365_emulator, m365_tenant, cert):
    endpoint = f"{m365_emulator.base_url}/{m365_tenant}/oauth2/v2.0/token"
    app_id = m365_emulator.add_application(m365_tenant, certificates=[cert.certificate_pem], adminConsent=True)
    http = session_for(m365_emulator)

    def post(a):
        return http.post(endpoint, data={"grant_type": "client_credentials", "client_id": app_id, "scope": GRAPH,
                                         "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                                         "client_assertion": a})
    same = assertion(cert, app_id, endpoint)
    assert post(same).status_code == 200 and post(same).status_code == 200  # reusable within its lifetime
    assert post(assertion(cert, app_id, endpoint, alg="PS256")).status_code == 200
    expired = post(assertion(cert, app_id, endpoint, lifetime=-900))
    assert expired.status_code == 401 and expired.json()["error_codes"] == [700024]
    assert post(assertion(cert, app_id, "https://elsewhere.example/token")).json()["error_codes"] == [50012]
    tampered = same[:-4] + ("AAAA" if not same.endswith("AAAA") else "BBBB")
    assert post(tampered).json()["error_codes"] == [7000274]
    assert post("not-a-jwt").json()["error_codes"] == [50027]


def _pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def test_authorization_code_flow_with_pkce(m365_emulator, m365_tenant, cert):
    em, tid = m365_emulator, m365_tenant
    redirect = "https://portal.example/integrations/microsoft365/oauth2/callback"
    app_id = em.add_application(tid, displayName="Portal", certificates=[cert.certificate_pem],
                                redirectUris=[redirect], adminConsent=True)
    http = session_for(em)
    disco = http.get(f"{em.base_url}/{tid}/v2.0/.well-known/openid-configuration").json()
    verifier, challenge = _pkce()
    params = {"client_id": app_id, "redirect_uri": redirect, "response_type": "code", "state": "st4te",
              "nonce": "n0nce", "scope": "openid profile email offline_access", "code_challenge": challenge,
              "code_challenge_method": "S256", "prompt": "login"}
    page = http.get(disco["authorization_endpoint"], params=params)
    assert page.status_code == 200 and 'name="loginfmt"' in page.text
    user = [u for u in em.users(tid) if u["userPrincipalName"].startswith("alice@")][0]
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    bad = http.post(disco["authorization_endpoint"], data={**form, "loginfmt": user["userPrincipalName"],
                                                           "passwd": "wrong"}, allow_redirects=False)
    assert "AADSTS50126" in bad.text
    ok = http.post(disco["authorization_endpoint"], data={**form, "loginfmt": user["userPrincipalName"],
                                                          "passwd": PASSWORD}, allow_redirects=False)
    assert ok.status_code == 302 and ok.headers["Location"].startswith(redirect + "?")
    q = parse_qs(urlsplit(ok.headers["Location"]).query)
    assert q["state"] == ["st4te"]
    endpoint = disco["token_endpoint"]
    form = {"grant_type": "authorization_code", "client_id": app_id, "code": q["code"][0], "redirect_uri": redirect,
            "code_verifier": verifier, "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion(cert, app_id, endpoint)}
    tokens = http.post(endpoint, data=form).json()
    id_token = tokens["id_token"]
    claims = jwt.decode(id_token, _jwks_key(em, tid, id_token), algorithms=["RS256"], audience=app_id,
                        issuer=disco["issuer"])
    assert claims["nonce"] == "n0nce" and claims["oid"] == user["id"] and claims["tid"] == tid
    assert claims["preferred_username"] == user["userPrincipalName"] and claims["email"] == user["mail"]
    assert claims["sub"] != user["id"]
    assert disco["issuer"] == f"{em.base_url}/{tid}/v2.0"
    reuse = http.post(endpoint, data=form)
    assert reuse.status_code == 400 and reuse.json()["error_codes"] == [54005]
    refreshed = http.post(endpoint, data={"grant_type": "refresh_token", "client_id": app_id,
                                          "refresh_token": tokens["refresh_token"],
                                          "client_assertion_type": form["client_assertion_type"],
                                          "client_assertion": form["client_assertion"]})
    assert refreshed.status_code == 200 and "access_token" in refreshed.json()
    # SSO: a second authorize is answered at once; form_post; a wrong verifier fails with 501481
    verifier2, challenge2 = _pkce()
    again = http.get(disco["authorization_endpoint"], params={**params, "prompt": None, "code_challenge": challenge2,
                                                              "response_mode": "form_post"})
    assert again.status_code == 200 and f'action="{redirect}"' in again.text
    code2 = re.search(r'name="code" value="([^"]+)"', again.text).group(1)
    wrong = http.post(endpoint, data={**form, "code": code2, "code_verifier": verifier})
    assert wrong.json()["error_codes"] == [501481]


def test_authorize_rejects_unregistered_redirect_uri(m365_emulator, m365_tenant):
    app_id = m365_emulator.add_application(m365_tenant, redirectUris=["https://ok.example/cb"])
    r = session_for(m365_emulator).get(f"{m365_emulator.base_url}/{m365_tenant}/oauth2/v2.0/authorize", params={
        "client_id": app_id, "redirect_uri": "https://evil.example/cb", "response_type": "code", "scope": "openid"})
    assert "AADSTS50011" in r.text and "https://evil.example/cb" in r.text
    r = session_for(m365_emulator).get(f"{m365_emulator.base_url}/{m365_tenant}/oauth2/v2.0/authorize", params={
        "client_id": app_id, "redirect_uri": "https://ok.example/cb", "response_type": "code",
        "scope": "openid Mail.Send"}, allow_redirects=False)
    assert r.status_code == 302 and "AADSTS65001" in parse_qs(urlsplit(r.headers["Location"]).query)["error_description"][0]


def test_admin_consent_flow(m365_emulator, m365_tenant, cert):
    em, tid = m365_emulator, m365_tenant
    redirect = "https://portal.example/consent/done"
    app_id = em.add_application(tid, certificates=[cert.certificate_pem], redirectUris=[redirect],
                                permissions=["User.Read.All"], adminConsent=False)
    http = session_for(em)
    url = f"{em.base_url}/{tid}/adminconsent"
    page = http.get(url, params={"client_id": app_id, "redirect_uri": redirect, "state": "xyz"})
    assert "User.Read.All" in page.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    domain = em.users(tid)[0]["userPrincipalName"].split("@")[1]
    denied = http.post(url, data={**form, "loginfmt": f"alice@{domain}", "passwd": PASSWORD, "consent": "accept"},
                       allow_redirects=False)
    assert "AADSTS90094" in denied.text
    http = session_for(em)
    done = http.post(url, data={**form, "loginfmt": f"admin@{domain}", "passwd": PASSWORD, "consent": "accept"},
                     allow_redirects=False)
    assert done.status_code == 302
    q = parse_qs(urlsplit(done.headers["Location"]).query)
    assert q == {"admin_consent": ["True"], "tenant": [tid], "state": ["xyz"]}
    endpoint = f"{em.base_url}/{tid}/oauth2/v2.0/token"
    token = http.post(endpoint, data={"grant_type": "client_credentials", "client_id": app_id, "scope": GRAPH,
                                      "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                                      "client_assertion": assertion(cert, app_id, endpoint)}).json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["roles"] == ["User.Read.All"]


@pytest.mark.parametrize("cloud, graph, issuer_host, instance", [
    ("global", "https://graph.microsoft.com", "sts.windows.net", "microsoftonline.com"),
    ("usgov", "https://graph.microsoft.us", "login.microsoftonline.us", "microsoftonline.us"),
    ("usgov-dod", "https://dod-graph.microsoft.us", "login.microsoftonline.us", "microsoftonline.us"),
    ("china", "https://microsoftgraph.chinacloudapi.cn", "sts.chinacloudapi.cn", "partner.microsoftonline.cn"),
])
def test_tenant_cloud_sets_issuer_hosts_and_graph_resource(m365_emulator, cert, cloud, graph, issuer_host, instance):
    """MSAL asks for the cloud's own Graph scope; the token names that cloud's issuer and Graph; another
    cloud's Graph is not a resource in this tenant (tokens are not interchangeable across clouds)."""
    from flask_pbx365.testing import default_tenant_fixture

    fixture = default_tenant_fixture()
    fixture["tenant"]["cloud"] = cloud
    tid = m365_emulator.create_tenant(fixture)
    app_id = m365_emulator.add_application(tid, certificates=[cert.certificate_pem], permissions=["User.Read.All"],
                                           adminConsent=True)
    credential = {"private_key": cert.private_key_pem, "public_certificate": cert.certificate_pem}
    result = _msal(m365_emulator, tid, app_id, credential).acquire_token_for_client([f"{graph}/.default"])
    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], _jwks_key(m365_emulator, tid, result["access_token"]),
                        algorithms=["RS256"], audience=graph)
    assert claims["iss"] == f"https://{issuer_host}/{tid}/" and claims["tid"] == tid
    disco = session_for(m365_emulator).get(f"{m365_emulator.base_url}/{tid}/v2.0/.well-known/openid-configuration")
    assert disco.json()["cloud_instance_name"] == instance
    assert disco.json()["issuer"] == f"{m365_emulator.base_url}/{tid}/v2.0"
    foreign = "https://microsoftgraph.chinacloudapi.cn" if cloud == "global" else "https://graph.microsoft.com"
    refused = _msal(m365_emulator, tid, app_id, credential).acquire_token_for_client([f"{foreign}/.default"])
    assert refused.get("error_codes") == [500011], refused


def test_authorize_login_hint_and_silent_prompt(m365_emulator, m365_tenant):
    em, tid = m365_emulator, m365_tenant
    redirect = "https://portal.example/cb"
    app_id = em.add_application(tid, redirectUris=[redirect], adminConsent=True)
    alice = next(u for u in em.users(tid) if u["userPrincipalName"].startswith("alice@"))["userPrincipalName"]
    bob = alice.replace("alice@", "bob@")
    endpoint = f"{em.base_url}/{tid}/oauth2/v2.0/authorize"
    base = {"client_id": app_id, "redirect_uri": redirect, "response_type": "code", "scope": "openid",
            "state": "s1", "nonce": "n1"}
    http = session_for(em)
    silent = http.get(endpoint, params={**base, "prompt": "none"}, allow_redirects=False)
    assert silent.status_code == 302
    q = parse_qs(urlsplit(silent.headers["Location"]).query)
    assert q["error"] == ["login_required"] and q["state"] == ["s1"] and "AADSTS50058" in q["error_description"][0]
    page = http.get(endpoint, params={**base, "login_hint": alice})
    assert f'name="loginfmt" id="i0116" value="{alice}"' in page.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    signed_in = http.post(endpoint, data={**form, "loginfmt": alice, "passwd": PASSWORD}, allow_redirects=False)
    assert signed_in.status_code == 302 and "code" in parse_qs(urlsplit(signed_in.headers["Location"]).query)
    # the session now answers silently, unless the hint names somebody else
    again = http.get(endpoint, params={**base, "prompt": "none", "login_hint": alice}, allow_redirects=False)
    assert "code" in parse_qs(urlsplit(again.headers["Location"]).query)
    other = http.get(endpoint, params={**base, "prompt": "none", "login_hint": bob}, allow_redirects=False)
    assert parse_qs(urlsplit(other.headers["Location"]).query)["error"] == ["login_required"]
