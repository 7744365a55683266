"""App-only Graph tokens through MSAL with the tenant's certificate.

One MSAL ``ConfidentialClientApplication`` (and so one token cache) per tenant app and certificate, kept in a
process-wide registry so that every :class:`~flask_pbx365.graph.client.GraphClient` of a tenant shares tokens.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

import jwt
import msal
import requests

from ..exceptions import AuthenticationError, KeyPairError
from .credentials import AppCredentials
from .transport import TrustedHttp, connection_error, new_session, trust_store

logger = logging.getLogger("flask_pbx365.graph")

#: Assertion algorithms: PS256 signs with the SHA-256 thumbprint header ``x5t#S256`` (MSAL's choice when it is
#: given the certificate but no SHA-1 thumbprint); RS256 with the legacy SHA-1 ``x5t``.
ALGORITHMS = ("PS256", "RS256")

_AADSTS = re.compile(r"AADSTS(\d+)")

_ADVICE: dict[str, str] = {
    "700016": ("The application (client) ID {client_id} is not registered in directory {directory_id}: compare the "
               "Client ID and Directory (tenant) ID on the Configure tab with Entra > App registrations > Overview."),
    "90002": ("Directory (tenant) ID {directory_id} does not exist in the {cloud} cloud: check the Directory ID and "
              "the cloud on the Configure tab."),
    "900023": ("{directory_id!r} is not a valid Directory (tenant) ID: copy the GUID from Entra > Overview."),
    "700027": ("Entra does not know this certificate (SHA-1 {sha1}, SHA-256 {sha256}) or the signature does not "
               "match: upload public_key.pem in Entra > App registrations > Certificates & secrets > Certificates."),
    "7000222": ("The app's credential has expired: generate a new key pair (flask pbx365 keys generate), upload "
                "its public_key.pem in Entra > Certificates & secrets, then activate it."),
    "7000215": ("Entra rejected the app credential: upload public_key.pem in Entra > Certificates & secrets."),
    "700024": ("The client assertion is outside its valid time range: check this server's clock (NTP)."),
    "65001": ("Admin consent has not been granted for the application permissions: open Entra > API permissions and "
              "click \"Grant admin consent\", or use the Configure tab's admin consent link."),
    "7000112": ("The application is disabled in Entra: enable it under Enterprise applications > Properties."),
    "500011": ("Microsoft Graph is not known in this directory for the selected cloud: check the cloud selection."),
    "70011": ("The Graph scope is invalid for this cloud: check the cloud selection (and the custom Graph URL)."),
    "53003": ("A Conditional Access policy blocked the app's sign-in: exclude this workload identity from it."),
    "50049": ("The login URL is not a known Microsoft authority: check the cloud selection."),
}


@dataclass
class _Entry:
    app: msal.ConfidentialClientApplication
    http: TrustedHttp
    lock: threading.Lock


_REGISTRY: dict[tuple, _Entry] = {}
_REGISTRY_LOCK = threading.Lock()


def registry_key(credentials: AppCredentials, algorithm: str) -> tuple:
    """Cache key: tenant, app, directory and certificate; plus the endpoints and trust, so a changed
    Configure tab never reuses a stale MSAL app."""
    cloud = credentials.cloud
    return (credentials.tenant_key, credentials.client_id, credentials.directory_id,
            credentials.sha256_thumbprint, cloud.login_url, cloud.graph_url, cloud.ca_bundle, algorithm)


def forget(credentials: AppCredentials | None = None) -> None:
    """Drop cached MSAL apps and tokens (all of them, or those of one tenant app)."""
    with _REGISTRY_LOCK:
        for key in list(_REGISTRY):
            if credentials is None or key[:3] == (credentials.tenant_key, credentials.client_id,
                                                  credentials.directory_id):
                _REGISTRY.pop(key).http.close()


class TokenProvider:
    """Acquires and caches app-only tokens for one tenant app."""

    def __init__(self, credentials: AppCredentials, *, algorithm: str = "PS256", timeout: float = 30):
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}")
        self.credentials = credentials
        self.algorithm = algorithm
        self.timeout = timeout

    def _context(self) -> dict[str, str]:
        c = self.credentials
        return {"client_id": c.client_id, "directory_id": c.directory_id, "cloud": c.cloud.label,
                "sha1": c.sha1_thumbprint, "sha256": c.sha256_thumbprint}

    def _entry(self) -> _Entry:
        key = registry_key(self.credentials, self.algorithm)
        with _REGISTRY_LOCK:
            entry = _REGISTRY.get(key)
        if entry is not None:
            return entry
        entry = self._build()
        with _REGISTRY_LOCK:
            existing = _REGISTRY.setdefault(key, entry)
        if existing is not entry:
            entry.http.close()
        return existing

    def _client_credential(self) -> dict[str, str]:
        c = self.credentials
        credential = {"private_key": _text(c.private_key_pem), "public_certificate": _text(c.certificate_pem)}
        if self.algorithm == "RS256":
            # An explicit SHA-1 thumbprint makes MSAL fall back to RS256 + x5t.
            credential["thumbprint"] = c.sha1_thumbprint
        return credential

    def _build(self) -> _Entry:
        c = self.credentials
        verify = trust_store(c.cloud)
        http = TrustedHttp(new_session(pool_maxsize=4), verify=verify, timeout=self.timeout, retries=2)
        authority = c.cloud.authority(c.directory_id)
        try:
            app = msal.ConfidentialClientApplication(
                c.client_id,
                client_credential=self._client_credential(),
                authority=authority,
                # Real clouds' hosts are on MSAL's list of known authorities and are validated as usual. A
                # custom login host cannot be checked against Microsoft's instance discovery (and this machine
                # may not reach it), so only there is instance discovery off; the tenant's OpenID metadata is
                # still fetched over the configured trust.
                instance_discovery=False if c.cloud.is_custom else None,
                http_client=http,
                token_cache=msal.TokenCache(),
            )
        except requests.RequestException as exc:
            http.close()
            raise connection_error(exc, "GET", authority, verify) from exc
        except ValueError as exc:
            http.close()
            # MSAL re-raises discovery failures without the server's answer; that (with the AADSTS code) is in
            # the exception it was handling.
            text = f"{exc.__context__}\n{exc}" if exc.__context__ else str(exc)
            raise self._auth_error(text, f"MSAL could not use the authority {authority}") from exc
        return _Entry(app=app, http=http, lock=threading.Lock())

    def _auth_error(self, text: str, fallback: str) -> AuthenticationError:
        match = _AADSTS.search(text or "")
        code = match.group(1) if match else None
        advice = _ADVICE.get(code or "")
        if advice:
            message = f"AADSTS{code}: " + advice.format(**self._context())
            if code == "700027" and self.credentials.certificate_expired:
                message += " The certificate has expired: generate and upload a new key pair."
        else:
            first_line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
            message = f"{fallback}: {first_line[:300]}" if first_line else fallback
        return AuthenticationError(message, aadsts=code, code=code and f"AADSTS{code}")

    def get(self) -> str:
        """A valid access token (from MSAL's cache when it has one)."""
        entry = self._entry()
        with entry.lock:  # one token request at a time per app: concurrent callers then hit the cache
            try:
                result = entry.app.acquire_token_for_client(scopes=[self.credentials.cloud.graph_scope])
            except requests.RequestException as exc:
                raise connection_error(exc, "POST", entry.app.authority.token_endpoint, entry.http.verify) from exc
            except (ValueError, TypeError, jwt.PyJWTError) as exc:  # the key cannot sign the client assertion
                raise KeyPairError(
                    f"The private key of tenant {self.credentials.tenant_key!r} cannot sign a client assertion "
                    f"({type(exc).__name__}): generate a new key pair and upload its public_key.pem.") from exc
        token = result.get("access_token") if isinstance(result, dict) else None
        if token:
            if result.get("token_source") == "identity_provider":
                logger.info("Acquired a Graph token for tenant %s (app %s)", self.credentials.tenant_key,
                            self.credentials.client_id)
            return token
        description = (result or {}).get("error_description") or (result or {}).get("error") or ""
        codes = (result or {}).get("error_codes") or []
        if codes and "AADSTS" not in description:
            description = f"AADSTS{codes[0]}: {description}"
        error = self._auth_error(description, f"Entra refused a token to app {self.credentials.client_id}")
        logger.warning("Token request failed for tenant %s: %s", self.credentials.tenant_key, error)
        raise error

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (Graph answered 401 with it) so that the next :meth:`get` fetches a new one."""
        entry = self._entry()
        cache = entry.app.token_cache
        with entry.lock:
            for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN,
                                          query={"client_id": self.credentials.client_id})):
                if item.get("secret") == token:
                    cache.remove_at(item)



def _text(pem: bytes | str) -> str:
    return pem.decode("ascii") if isinstance(pem, bytes) else pem
