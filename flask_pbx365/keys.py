"""Key pairs per tenant: generate, list, activate, and the credentials the Graph client signs with.

A new pair does not replace the active one: the admin uploads its certificate to Entra first and then activates it,
so a rotation has no outage.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from . import signals
from .crypto import generate_key_pair as _generate
from .exceptions import KeyPairError
from .models import KeyPair
from .state import get_state


@dataclass(frozen=True)
class KeyPairInfo:
    """What the Configure tab and ``keys show`` tell about a key pair (never the private key)."""

    sha1: str
    sha256: str
    not_before: datetime
    not_after: datetime
    active: bool
    certificate_pem: bytes

    @property
    def days_left(self) -> int:
        return (self.not_after - datetime.now(timezone.utc)).days

    def as_json(self) -> dict:
        return {"sha1": self.sha1, "sha256": self.sha256, "not_after": self.not_after.isoformat(),
                "active": self.active}


def _info(row: KeyPair) -> KeyPairInfo:
    return KeyPairInfo(row.sha1, row.sha256, row.not_before, row.not_after, row.active,
                       row.certificate_pem.encode())


def _rows(tenant: str) -> list[KeyPair]:
    q = sa.select(KeyPair).where(KeyPair.tenant == tenant).order_by(KeyPair.created_at.desc(), KeyPair.id.desc())
    return list(get_state().db.session.scalars(q))


def list_key_pairs(tenant: str) -> list[KeyPairInfo]:
    """The tenant's key pairs, newest first."""
    return [_info(r) for r in _rows(tenant)]


def active_key_pair(tenant: str) -> KeyPairInfo | None:
    return next((_info(r) for r in _rows(tenant) if r.active), None)


def generate_key_pair(tenant: str) -> KeyPairInfo:
    """Make a new RSA key and self-signed certificate; the first pair of a tenant becomes active at once."""
    state = get_state()
    cfg = state.app.config
    pair = _generate(f"flask_pbx365 {tenant}", days=int(cfg["PBX365_CERT_VALIDITY_DAYS"]),
                     key_size=int(cfg["PBX365_RSA_KEY_SIZE"]))
    has_active = active_key_pair(tenant) is not None
    row = KeyPair(tenant=tenant, sha1=pair.sha1, sha256=pair.sha256,
                  certificate_pem=pair.certificate_pem.decode(),
                  private_key_encrypted=state.vault.encrypt(pair.private_key_pem, tenant=tenant, sha256=pair.sha256),
                  not_before=pair.not_before, not_after=pair.not_after, active=not has_active, expiry_notices=[])
    state.db.session.add(row)
    state.db.session.commit()
    signals.key_pair_generated.send(state.app, tenant=tenant, sha256=pair.sha256)
    return _info(row)


def _find(tenant: str, sha256: str) -> KeyPair:
    wanted = sha256.lower().replace(":", "")
    for row in _rows(tenant):
        if row.sha256 == wanted:
            return row
    raise KeyPairError(f"Tenant {tenant!r} has no key pair with SHA-256 thumbprint {sha256}; "
                       "`flask pbx365 keys show` lists them.")


def activate_key_pair(tenant: str, sha256: str) -> KeyPairInfo:
    """Make that pair the one the tenant signs with (its certificate must be uploaded to Entra first)."""
    state = get_state()
    chosen = _find(tenant, sha256)
    if chosen.not_after <= datetime.now(timezone.utc):
        raise KeyPairError(f"The certificate {chosen.sha256[:16]}… expired on {chosen.not_after:%Y-%m-%d}; "
                           "generate a new key pair instead.")
    for row in _rows(tenant):
        row.active = row is chosen
    state.db.session.commit()
    signals.key_pair_activated.send(state.app, tenant=tenant, sha256=chosen.sha256)
    return _info(chosen)


def certificate_pem(tenant: str, sha256: str | None = None) -> bytes:
    """The certificate to upload to Entra (``public_key.pem``): the given pair, else the active one."""
    if sha256:
        return _find(tenant, sha256).certificate_pem.encode()
    info = active_key_pair(tenant)
    if info is None:
        raise KeyPairError(f"Tenant {tenant!r} has no key pair yet: click 'Generate new key pair'.")
    return info.certificate_pem


def private_key_pem(tenant: str) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM) of the active pair, decrypted for signing."""
    state = get_state()
    row = next((r for r in _rows(tenant) if r.active), None)
    if row is None:
        raise KeyPairError(f"Tenant {tenant!r} has no active key pair: generate one on the Configure tab and "
                           "upload its public_key.pem to Entra (Certificates & secrets).")
    key = state.vault.decrypt(row.private_key_encrypted, tenant=tenant, sha256=row.sha256)
    return key, row.certificate_pem.encode()


def reencrypt_all() -> int:
    """Re-encrypt every private key with the current secret (after a rotation); returns how many changed."""
    state = get_state()
    vault = state.vault
    changed = 0
    for row in state.db.session.scalars(sa.select(KeyPair)):
        if vault.needs_reencryption(row.private_key_encrypted):
            plain = vault.decrypt(row.private_key_encrypted, tenant=row.tenant, sha256=row.sha256)
            row.private_key_encrypted = vault.encrypt(plain, tenant=row.tenant, sha256=row.sha256)
            changed += 1
    state.db.session.commit()
    return changed
