"""Private keys are encrypted at rest, bound to their tenant, and survive a secret rotation."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from flask_pbx365.crypto import KeyVault, generate_key_pair
from flask_pbx365.exceptions import ConfigurationError, KeyPairError


def test_generated_certificate_is_self_signed_for_one_year():
    pair = generate_key_pair("acme", days=365)
    cert = x509.load_pem_x509_certificate(pair.certificate_pem)
    assert cert.issuer == cert.subject
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days in (365, 366)
    assert cert.fingerprint(hashes.SHA1()).hex() == pair.sha1
    assert cert.fingerprint(hashes.SHA256()).hex() == pair.sha256
    assert pair.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_vault_round_trip_and_binding_to_tenant():
    vault = KeyVault("secret-one")
    blob = vault.encrypt(b"PRIVATE", tenant="acme", sha256="ab" * 32)
    assert b"PRIVATE" not in blob
    assert vault.decrypt(blob, tenant="acme", sha256="ab" * 32) == b"PRIVATE"
    with pytest.raises(KeyPairError, match="integrity"):
        vault.decrypt(blob, tenant="globex", sha256="ab" * 32)


def test_wrong_secret_is_refused_and_fallback_allows_rotation():
    old = KeyVault("secret-one")
    blob = old.encrypt(b"PRIVATE", tenant="acme", sha256="cd" * 32)
    with pytest.raises(KeyPairError, match="PBX365_SECRET_KEY_FALLBACKS"):
        KeyVault("secret-two").decrypt(blob, tenant="acme", sha256="cd" * 32)
    rotating = KeyVault("secret-two", ["secret-one"])
    assert rotating.decrypt(blob, tenant="acme", sha256="cd" * 32) == b"PRIVATE"
    assert rotating.needs_reencryption(blob)
    fresh = rotating.encrypt(b"PRIVATE", tenant="acme", sha256="cd" * 32)
    assert not rotating.needs_reencryption(fresh)
    assert KeyVault("secret-two").decrypt(fresh, tenant="acme", sha256="cd" * 32) == b"PRIVATE"


def test_empty_secret_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="PBX365_SECRET_KEY"):
        KeyVault("")


def test_private_key_is_stored_encrypted_and_rotation_reencrypts(app):
    from flask_pbx365.keys import generate_key_pair as generate, private_key_pem, reencrypt_all
    from flask_pbx365.state import get_state

    with app.app_context():
        info = generate("acme")
        raw = get_state().db.session.execute(sa.text(
            "SELECT private_key_encrypted FROM pbx365_key_pair WHERE sha256 = :s"), {"s": info.sha256}).scalar_one()
        assert b"PRIVATE KEY" not in bytes(raw)
        key, cert = private_key_pem("acme")
        assert key.startswith(b"-----BEGIN PRIVATE KEY-----")
        assert cert == info.certificate_pem

    app.config["PBX365_SECRET_KEY_FALLBACKS"] = [app.config["PBX365_SECRET_KEY"]]
    app.config["PBX365_SECRET_KEY"] = "a-brand-new-secret"
    with app.app_context():
        assert reencrypt_all() == 1
        assert reencrypt_all() == 0
    app.config["PBX365_SECRET_KEY_FALLBACKS"] = []
    with app.app_context():
        assert private_key_pem("acme")[0] == key
