"""From a tenant's stored configuration to what the Graph client and the OAuth routes need."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

from .keys import private_key_pem
from .tenants import cloud_of, require_connection

if TYPE_CHECKING:
    from .graph.credentials import AppCredentials


def credentials_for(tenant: str) -> "AppCredentials":
    """The tenant's app credentials (decrypted private key included) for :class:`~flask_pbx365.graph.GraphClient`."""
    from .graph.credentials import AppCredentials

    config = require_connection(tenant)
    key, cert = private_key_pem(tenant)
    return AppCredentials(tenant_key=tenant, client_id=config.client_id, directory_id=config.directory_id,
                          cloud=cloud_of(config), private_key_pem=key, certificate_pem=cert)


def client_options() -> dict:
    """Keyword arguments for GraphClient from the ``PBX365_*`` config."""
    cfg = current_app.config
    return {"timeout": float(cfg["PBX365_HTTP_TIMEOUT"]), "max_retries": int(cfg["PBX365_MAX_RETRIES"]),
            "max_backoff": float(cfg["PBX365_MAX_BACKOFF"])}


def test_connection(tenant: str) -> dict:
    """The ``test-connection --json`` answer for the tenant; never raises for a connection problem."""
    from .exceptions import PBX365Error
    from .graph.permissions import FEATURE_PERMISSIONS
    from .graph.permissions import test_connection as _test

    try:
        creds = credentials_for(tenant)
    except PBX365Error as exc:
        return {"ok": False, "error": str(exc), "granted": [],
                "features": {name: {"ok": False, "missing": sorted({p for alt in alts[:1] for p in alt})}
                             for name, alts in FEATURE_PERMISSIONS.items()}}
    return _test(creds, **client_options())
