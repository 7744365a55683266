"""What the Graph client needs to act as a tenant's Entra app: IDs, cloud and the certificate key pair."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ..clouds import Cloud
from ..exceptions import KeyPairError


@dataclass(frozen=True)
class AppCredentials:
    """A PBX tenant's Entra app registration with its certificate credential.

    ``private_key_pem`` is the decrypted PKCS#8 PEM; ``certificate_pem`` the X.509 certificate the admin
    uploaded to the app registration (``public_key.pem``).
    """

    tenant_key: str
    client_id: str
    directory_id: str
    cloud: Cloud
    private_key_pem: bytes
    certificate_pem: bytes

    @cached_property
    def certificate(self) -> x509.Certificate:
        """The parsed certificate (:class:`KeyPairError` when it is not a PEM certificate)."""
        try:
            return x509.load_pem_x509_certificate(_as_bytes(self.certificate_pem))
        except ValueError as exc:
            raise KeyPairError(
                f"The certificate of tenant {self.tenant_key!r} is not a valid PEM X.509 certificate: "
                "generate a new key pair (flask pbx365 keys generate) and upload its public_key.pem.") from exc

    @property
    def sha1_thumbprint(self) -> str:
        """Hex SHA-1 thumbprint, as Entra's "Certificates & secrets" page shows it."""
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's display format

    @property
    def sha256_thumbprint(self) -> str:
        """Hex SHA-256 thumbprint (sent as ``x5t#S256`` with PS256 assertions)."""
        return self.certificate.fingerprint(hashes.SHA256()).hex().upper()

    @property
    def certificate_expired(self) -> bool:
        return self.certificate.not_valid_after_utc <= _dt.datetime.now(_dt.timezone.utc)

    def __repr__(self) -> str:  # never show key material in logs or tracebacks
        return (f"AppCredentials(tenant_key={self.tenant_key!r}, client_id={self.client_id!r}, "
                f"directory_id={self.directory_id!r}, cloud={self.cloud.name!r})")


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("ascii") if isinstance(value, str) else value
