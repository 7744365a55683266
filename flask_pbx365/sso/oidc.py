"""The tenant's OpenID Connect provider: discovery, signing keys and ID-token validation (Authlib/joserfc).

The authority is always the tenant's own, ``https://{login host}/{directory id}/v2.0``, never ``/common``.
The issuer is the one the tenant's discovery document names, which must be that authority or its cloud's
other sign-in host name (21Vianet answers ``login.chinacloudapi.cn`` discovery with the
``login.partner.microsoftonline.cn`` issuer, as MSAL's well-known authority hosts list them).
Metadata and keys are cached per issuer; an ID token signed with an unknown ``kid`` refetches the key set once
(Entra rolls its signing keys over).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from authlib.oidc.core import CodeIDToken
from joserfc import jws, jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from ..clouds import Cloud
from ..exceptions import ConfigurationError, SignInError
from ..graph.transport import connection_error, timeouts, trust_store

#: Entra signs ID tokens with RS256 only; anything else (``none``, HS256 with the public key...) is refused.
ALGORITHMS = ["RS256"]
METADATA_TTL = 3600.0
#: Other sign-in host names a cloud's discovery document may name in its issuer (same cloud, same tenant).
ISSUER_ALIASES: dict[str, tuple[str, ...]] = {"china": ("login.partner.microsoftonline.cn",)}


@dataclass
class _Cached:
    metadata: dict
    keys: KeySet | None = None
    fetched_at: float = field(default_factory=time.monotonic)


_CACHE: dict[tuple[str, str | None], _Cached] = {}
_LOCK = threading.Lock()


def forget() -> None:
    """Drop every cached metadata document and key set."""
    with _LOCK:
        _CACHE.clear()


def _invalid(reason: str, hint: str = "Try again; if it keeps failing, check this server's clock and the "
                                     "tenant's Configure tab.") -> SignInError:
    return SignInError(f"Microsoft's answer could not be verified: {reason}.", code="invalid_id_token", status=401,
                       hint=hint)


class Provider:
    """One tenant's Entra OpenID provider in its cloud."""

    def __init__(self, cloud: Cloud, directory_id: str, *, timeout: float = 30.0):
        self.cloud = cloud
        self.directory_id = directory_id
        self.authority = cloud.issuer(directory_id)
        self.timeout = timeout

    @property
    def discovery_url(self) -> str:
        return f"{self.authority}/.well-known/openid-configuration"

    @property
    def accepted_issuers(self) -> list[str]:
        """The issuers this tenant's discovery document may name: its authority, or the same path on one of the
        cloud's other sign-in hosts. Never another tenant's, never ``/common``'s ``{tenantid}`` template."""
        return [self.authority] + [f"https://{host}/{self.directory_id}/v2.0"
                                   for host in ISSUER_ALIASES.get(self.cloud.name, ())]

    @property
    def issuer(self) -> str:
        """The tenant's issuer, exactly as its discovery document names it (ID tokens must carry it)."""
        return self.metadata["issuer"]

    def _get_json(self, url: str) -> Any:
        verify = trust_store(self.cloud)
        try:
            response = requests.get(url, timeout=timeouts(self.timeout), verify=verify)
        except requests.RequestException as exc:
            raise connection_error(exc, "GET", url, verify) from exc
        if response.status_code != 200:
            raise SignInError(
                f"{url} answered HTTP {response.status_code}: check the directory (tenant) ID and the cloud on "
                "the Configure tab.", code="provider_unavailable", status=502)
        try:
            return response.json()
        except ValueError as exc:
            raise SignInError(f"{url} did not answer with JSON: check the cloud's login URL.",
                              code="provider_unavailable", status=502) from exc

    def _entry(self) -> _Cached:
        key = (self.authority, self.cloud.ca_bundle)
        with _LOCK:
            entry = _CACHE.get(key)
        if entry is not None and time.monotonic() - entry.fetched_at < METADATA_TTL:
            return entry
        metadata = self._get_json(self.discovery_url)
        if not isinstance(metadata, dict):
            raise ConfigurationError(f"The OpenID metadata at {self.discovery_url} is not a JSON object: check the "
                                     "cloud's login URL on the Configure tab.")
        if metadata.get("issuer") not in self.accepted_issuers:
            raise ConfigurationError(
                f"The OpenID metadata at {self.discovery_url} names the issuer {metadata.get('issuer')!r}, not "
                f"{self.authority!r}: check the cloud and the directory (tenant) ID on the Configure tab.")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(metadata.get(name), str) or not metadata[name].startswith("https://"):
                raise ConfigurationError(f"The OpenID metadata at {self.discovery_url} has no https {name}.")
        entry = _Cached(metadata)
        with _LOCK:
            _CACHE[key] = entry
        return entry

    @property
    def metadata(self) -> dict:
        """The tenant's OpenID configuration document (cached for an hour)."""
        return self._entry().metadata

    def key_set(self, *, refresh: bool = False) -> KeySet:
        """The signing keys (``jwks_uri``); ``refresh`` fetches them again."""
        entry = self._entry()
        if entry.keys is None or refresh:
            data = self._get_json(entry.metadata["jwks_uri"])
            try:
                entry.keys = KeySet.import_key_set(data)
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise SignInError(f"The signing keys at {entry.metadata['jwks_uri']} are not a valid JSON Web "
                                  "Key Set.", code="provider_unavailable", status=502) from exc
        return entry.keys

    def validate_id_token(self, id_token: str, *, client_id: str, nonce: str, leeway: int = 120,
                          now: int | None = None) -> dict:
        """The claims of ``id_token`` once its signature (RS256, JWKS), ``iss``, ``aud``, ``tid``, ``exp``,
        ``nbf``, ``iat`` (``leeway`` seconds of clock skew) and ``nonce`` are all correct.

        Raises :class:`SignInError` (code ``invalid_id_token``) naming the failed check.
        """
        try:
            header = jws.extract_compact(id_token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError) as exc:
            raise _invalid("the ID token is not a signed JWT") from exc
        if header.get("alg") not in ALGORITHMS:
            raise _invalid(f"the ID token is signed with {header.get('alg')!r}; only RS256 is accepted")
        kid = header.get("kid")
        if not kid:
            raise _invalid("the ID token names no signing key (kid)")
        keys = self.key_set()
        if not any(k.kid == kid for k in keys.keys):
            keys = self.key_set(refresh=True)  # key rollover: Entra published a new key since we cached
            if not any(k.kid == kid for k in keys.keys):
                raise _invalid(f"the ID token was signed with key {kid!r}, which Microsoft does not publish")
        registry = jws.JWSRegistry(algorithms=ALGORITHMS)
        try:
            token = jwt.decode(id_token, keys, algorithms=ALGORITHMS, registry=registry)
        except JoseError as exc:
            raise _invalid("the ID token's signature is wrong") from exc
        claims = dict(token.claims)
        aud = claims.get("aud")
        if aud != client_id and aud != [client_id]:
            raise _invalid(f"the ID token is meant for {aud!r}, not this portal's app {client_id}",
                           "Check the application (client) ID on the Configure tab.")
        options = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": client_id},
            "tid": {"essential": True, "value": self.directory_id},
            "oid": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        checked = CodeIDToken(claims, token.header, options, {"nonce": nonce, "client_id": client_id})
        try:
            checked.validate(now=now, leeway=leeway)
        except ExpiredTokenError as exc:
            raise _invalid("the ID token has expired", "Sign in again; if it keeps failing, check this "
                                                        "server's clock (NTP).") from exc
        except (MissingClaimError, InvalidClaimError) as exc:
            claim = getattr(exc, "claim", None) or str(exc)
            raise _invalid(_claim_reason(claim, claims, self)) from exc
        except JoseError as exc:
            raise _invalid(f"the ID token is invalid ({exc})") from exc
        return claims


def _claim_reason(claim: str, claims: dict, provider: Provider) -> str:
    if claim == "iss":
        return f"the ID token comes from {claims.get('iss')!r}, not this tenant's {provider.issuer!r}"
    if claim == "tid":
        return (f"the ID token is from directory {claims.get('tid')!r}, not the configured "
                f"{provider.directory_id}")
    if claim == "nonce":
        return "the ID token's nonce does not match this sign-in (a replayed or injected token)"
    if claim in ("nbf", "iat"):
        return "the ID token is not valid yet (check this server's clock)"
    return f"the ID token's {claim!r} claim is missing or wrong"
