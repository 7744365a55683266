"""Key material of the emulator: its TLS CA and server certificate, and the token-signing keys (JWKS)."""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import threading
import uuid
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def ensure_tls(state_dir: str | os.PathLike, hosts: list[str]) -> tuple[Path, Path, Path]:
    """Create (or reuse) ``DIR/ca.pem`` + ``DIR/ca-key.pem`` and a server certificate for ``hosts``.

    Returns ``(server_cert, server_key, ca_cert)`` paths. The server certificate is re-issued on every start
    (so new host names work); the CA stays, so clients keep trusting ``ca.pem``.
    """
    d = Path(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    ca_path, ca_key_path = d / "ca.pem", d / "ca-key.pem"
    if ca_path.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
    else:
        ca_key = _new_key()
        ca_cert = (x509.CertificateBuilder().subject_name(_name("Microsoft 365 Emulator CA"))
                   .issuer_name(_name("Microsoft 365 Emulator CA")).public_key(ca_key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(_now() - dt.timedelta(days=1)).not_valid_after(_now() + dt.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
                   .sign(ca_key, hashes.SHA256()))
        _write_private(ca_key_path, _pem_key(ca_key))
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    key = _new_key()
    sans: list[x509.GeneralName] = []
    for h in dict.fromkeys(["localhost", "127.0.0.1", *hosts]):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(days=1)).not_valid_after(_now() + dt.timedelta(days=397))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = d / "server.pem", d / "server-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(key_path, _pem_key(key))
    return cert_path, key_path, ca_path


class SigningKey:
    """One token-signing key with its self-signed certificate (for ``x5c``/``x5t`` in the JWKS)."""

    def __init__(self) -> None:
        self.key = _new_key()
        self.cert = (x509.CertificateBuilder().subject_name(_name("accounts.emulator.example"))
                     .issuer_name(_name("accounts.emulator.example")).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(_now() - dt.timedelta(days=1))
                     .not_valid_after(_now() + dt.timedelta(days=730)).sign(self.key, hashes.SHA256()))
        self.x5t = _b64url(self.cert.fingerprint(hashes.SHA1()))
        self.kid = self.x5t  # Entra's kid equals the x5t of the key's certificate

    def jwk(self) -> dict:
        nums = self.key.public_key().public_numbers()
        der = self.cert.public_bytes(serialization.Encoding.DER)
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.x5t, "n": _int_b64(nums.n),
                "e": _int_b64(nums.e), "x5c": [base64.b64encode(der).decode()], "alg": "RS256"}


class SigningKeys:
    """The emulator's token-signing keys: the newest signs, all are published in the JWKS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = [SigningKey()]

    def rotate(self) -> str:
        """Add a new signing key (older ones stay published, as Entra does during rollover); returns its kid."""
        new = SigningKey()
        with self._lock:
            self._keys = [new, *self._keys][:3]
        return new.kid

    def jwks(self) -> dict:
        return {"keys": [k.jwk() for k in self._keys]}

    def publishes(self, kid: str) -> bool:
        """Whether a key with that ``kid`` is still published."""
        return any(k.kid == kid for k in self._keys)

    def public_key(self, kid: str):
        """The public key with that ``kid``, or None."""
        return next((k.key.public_key() for k in self._keys if k.kid == kid), None)

    def sign(self, claims: dict) -> str:
        """An RS256 JWT of ``claims`` with the current key's ``kid`` and ``x5t`` in its header."""
        k = self._keys[0]
        return jwt.encode(claims, k.key, algorithm="RS256", headers={"kid": k.kid, "x5t": k.x5t, "typ": "JWT"})


def new_guid() -> str:
    return str(uuid.uuid4())
