"""Client authentication by certificate: verifying a client assertion JWT against an app's certificates.

Follows Microsoft identity platform "certificate credentials": RS256 with ``x5t`` (SHA-1 thumbprint) or PS256
with ``x5t#S256``, optional ``x5c``, ``aud`` = the token endpoint, ``iss`` = ``sub`` = client id,
``exp``/``nbf`` checked (floats accepted); the same assertion may be reused within its lifetime.
"""
from __future__ import annotations

import base64
import binascii
import time
from datetime import datetime, timezone

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

CLOCK_SKEW = 300


class AadError(Exception):
    """An Entra token-endpoint error: HTTP ``status``, OAuth ``error``, AADSTS ``code`` and message."""

    def __init__(self, status: int, error: str, code: int, message: str):
        super().__init__(f"AADSTS{code}: {message}")
        self.status = status
        self.error = error
        self.code = code
        self.message = message


def parse_certificate(pem: str) -> x509.Certificate:
    """The X.509 certificate in ``pem``; ``FixtureError`` with an actionable message otherwise."""
    from .fixtures import FixtureError

    try:
        return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    except (ValueError, TypeError) as exc:
        raise FixtureError("The certificate is not a PEM X.509 certificate (upload public_key.pem, the file "
                           "starting with -----BEGIN CERTIFICATE-----).") from exc


def thumbprints(cert: x509.Certificate) -> tuple[bytes, bytes]:
    """(SHA-1, SHA-256) fingerprints of ``cert``."""
    return cert.fingerprint(hashes.SHA1()), cert.fingerprint(hashes.SHA256())


def _unb64(text: str) -> bytes:
    text = text.strip().rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return b""


def verify_client_assertion(assertion: str, app: dict, audiences: set[str]) -> str:
    """Check ``assertion`` for ``app``; returns the matched certificate's SHA-256 hex thumbprint.

    Raises :class:`AadError` with Entra's codes: 50027 malformed, 700027 key not registered, 7000274 bad
    signature, 1000502 certificate expired (or not yet valid), 700024 outside its time range, 50012 wrong
    audience, 700021 wrong issuer/subject.
    """
    app_id = app["appId"]
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AadError(400, "invalid_request", 50027, "JWT token is invalid or malformed.") from exc
    alg = header.get("alg")
    if alg not in ("RS256", "PS256"):
        raise AadError(401, "invalid_client", 5002738,
                       f"Invalid JWT token. '{alg}' is not a supported signature algorithm.")
    sha256 = _unb64(header.get("x5t#S256", "")) if header.get("x5t#S256") else b""
    sha1 = _unb64(header.get("x5t", "")) if header.get("x5t") else b""
    x5c = header.get("x5c")
    if isinstance(x5c, str):
        x5c = [x5c]
    match = None
    for pem in app.get("certificates") or []:
        cert = parse_certificate(pem)
        s1, s256 = thumbprints(cert)
        if (sha256 and sha256 == s256) or (sha1 and sha1 == s1):
            match = cert
            break
        if not sha1 and not sha256 and x5c:
            try:
                der = base64.b64decode(x5c[0])
            except (binascii.Error, ValueError):
                der = b""
            if der == cert.public_bytes(serialization.Encoding.DER):
                match = cert
                break
    if match is None:
        used = (sha256 or sha1).hex().upper() or "(none)"
        raise AadError(401, "invalid_client", 700027,
                       "Client assertion failed signature validation. [Reason - The key was not found., "
                       f"Thumbprint of key used by client: '{used}', Please visit the Azure Portal, Graph "
                       "Explorer or directly use MS Graph to see configured keys for app Id "
                       f"'{app_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/"
                       "deployments if you are using national cloud.]")
    now_utc = datetime.now(timezone.utc)
    if not match.not_valid_before_utc <= now_utc <= match.not_valid_after_utc:
        # Entra keeps an expired key credential on the app but refuses assertions signed with it.
        raise AadError(401, "invalid_client", 1000502,
                       f"The provided certificate is not within its specified validity window. Certificate "
                       f"valid from {match.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
                       f"{match.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}; current time "
                       f"{now_utc:%Y-%m-%dT%H:%M:%SZ}. Upload a valid certificate for app '{app_id}'.")
    try:
        jwt.decode(assertion, match.public_key(), algorithms=[alg],
                   options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                            "verify_aud": False, "verify_iss": False})
    except jwt.PyJWTError as exc:
        raise AadError(401, "invalid_client", 7000274,
                       "Key was found, but use of the key to verify the signature failed.") from exc
    now = time.time()
    try:
        exp = float(claims["exp"])
        nbf = float(claims.get("nbf", claims.get("iat", now)))
    except (KeyError, TypeError, ValueError) as exc:
        raise AadError(400, "invalid_request", 50027,
                       "JWT token is invalid or malformed. The 'exp' claim is missing.") from exc
    if not nbf - CLOCK_SKEW <= now <= exp + CLOCK_SKEW:
        raise AadError(401, "invalid_client", 700024,
                       f"Client assertion is not within its valid time range. Current time: "
                       f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now))}Z, assertion valid from "
                       f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(nbf))}Z, expiry time of assertion "
                       f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(exp))}Z.")
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if not any(isinstance(a, str) and a.rstrip("/") in audiences for a in auds):
        raise AadError(401, "invalid_client", 50012,
                       f"Client assertion audience claim does not match Realm issuer. Audience: '{aud}'.")
    if claims.get("iss") != app_id or claims.get("sub") != app_id:
        raise AadError(401, "invalid_client", 700021,
                       "Client assertion application identifier doesn't match 'client_id' parameter.")
    return thumbprints(match)[1].hex()
