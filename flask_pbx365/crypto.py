"""Key pairs for Entra certificate credentials, and encryption of private keys at rest.

A private key is stored as ``b"v1." + key_id(8 bytes hex) + nonce(12) + AES-256-GCM ciphertext``. The AES key is
derived with HKDF-SHA256 from the configured secret (``PBX365_SECRET_KEY``, else ``SECRET_KEY``); the associated data
binds the ciphertext to its tenant and certificate, so a row copied to another tenant does not decrypt.
Rotation: put the old secret in ``PBX365_SECRET_KEY_FALLBACKS``, the new one in ``PBX365_SECRET_KEY``, then run
``flask pbx365 keys reencrypt``.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from .exceptions import ConfigurationError, KeyPairError

_FORMAT = b"v1."
_HKDF_INFO = b"flask_pbx365 private key encryption v1"


@dataclass(frozen=True)
class GeneratedKeyPair:
    private_key_pem: bytes
    certificate_pem: bytes
    sha1: str
    sha256: str
    not_before: datetime
    not_after: datetime


def generate_key_pair(common_name: str, *, days: int = 365, key_size: int = 2048) -> GeneratedKeyPair:
    """An RSA key and a self-signed X.509 certificate valid ``days`` days, as Entra's "Upload certificate" takes."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.now(timezone.utc).replace(microsecond=0)
    not_before = now - timedelta(minutes=5)
    not_after = now + timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return GeneratedKeyPair(
        private_key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()),
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM),
        sha1=cert.fingerprint(hashes.SHA1()).hex(),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        not_before=not_before,
        not_after=not_after,
    )


def _derive(secret: str) -> bytes:
    if not secret:
        raise ConfigurationError("No secret to encrypt private keys: set PBX365_SECRET_KEY (or SECRET_KEY).")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret.encode())


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).hexdigest()[:8].encode()


class KeyVault:
    """Encrypts and decrypts private keys with the current secret, accepting fallbacks while rotating."""

    def __init__(self, secret: str, fallbacks: list[str] | tuple[str, ...] = ()):
        self._current = _derive(secret)
        self._keys = {_key_id(k): k for k in [self._current, *(_derive(s) for s in fallbacks if s)]}

    @staticmethod
    def _aad(tenant: str, sha256: str) -> bytes:
        return f"{tenant}\x00{sha256}".encode()

    def encrypt(self, plaintext: bytes, *, tenant: str, sha256: str) -> bytes:
        nonce = os.urandom(12)
        ciphertext = AESGCM(self._current).encrypt(nonce, plaintext, self._aad(tenant, sha256))
        return _FORMAT + _key_id(self._current) + nonce + ciphertext

    def decrypt(self, blob: bytes, *, tenant: str, sha256: str) -> bytes:
        blob = bytes(blob)
        if not blob.startswith(_FORMAT):
            raise KeyPairError("The stored private key is in an unknown format; generate a new key pair.")
        key_id, nonce, ciphertext = blob[3:11], blob[11:23], blob[23:]
        key = self._keys.get(key_id)
        if key is None:
            raise KeyPairError(
                "The private key was encrypted with a secret that is no longer configured. Put the previous "
                "secret in PBX365_SECRET_KEY_FALLBACKS, or generate a new key pair and upload its certificate.")
        try:
            return AESGCM(key).decrypt(nonce, ciphertext, self._aad(tenant, sha256))
        except InvalidTag as exc:
            raise KeyPairError("The stored private key failed its integrity check; generate a new key "
                               "pair and upload its certificate to Entra.") from exc

    def needs_reencryption(self, blob: bytes) -> bool:
        return bytes(blob)[3:11] != _key_id(self._current)
