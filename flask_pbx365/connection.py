"""From a tenant's stored configuration to what the Graph client and the OAuth routes need, and the connection test."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from flask import current_app

from .exceptions import GraphError, PBX365Error
from .graph import GraphClient, PermissionChecks, feature_status
from .graph.credentials import AppCredentials
from .graph.tokens import forget
from .keys import private_key_pem
from .state import get_state
from .tenants import cloud_of, require_connection

log = logging.getLogger("flask_pbx365.graph")


def credentials_for(tenant: str) -> AppCredentials:
    """The tenant's app credentials (decrypted private key included) for :class:`~flask_pbx365.graph.GraphClient`."""
    config = require_connection(tenant)
    key, cert = private_key_pem(tenant)
    return AppCredentials(tenant_key=tenant, client_id=config.client_id, directory_id=config.directory_id,
                          cloud=cloud_of(config), private_key_pem=key, certificate_pem=cert)


def client_options() -> dict:
    """Keyword arguments for GraphClient from the ``PBX365_*`` config."""
    cfg = current_app.config
    return {"timeout": float(cfg["PBX365_HTTP_TIMEOUT"]), "max_retries": int(cfg["PBX365_MAX_RETRIES"]),
            "max_backoff": float(cfg["PBX365_MAX_BACKOFF"])}


def permission_checks() -> dict[str, Any]:
    """Every switched-on feature's test-connection entries, in ``FEATURES`` order."""
    checks: dict[str, Any] = {}
    for feature in get_state().features:
        checks.update(feature.permissions)
    return checks


def check_credentials(credentials: AppCredentials, checks: PermissionChecks, **client_kw: Any) -> dict[str, Any]:
    """Acquire a token and report granted permissions and, per entry of ``checks``, whether it can work.

    Answers ``{"ok", "error", "granted", "features"}`` (the ``test-connection --json`` shape); ``ok`` is
    ``user_sync``'s. On a token failure ``error`` holds the admin-readable reason and every entry is not ok.
    A fresh token is acquired: a cached one would still show the permissions from before a new consent.
    """
    forget(credentials)
    try:
        with GraphClient(credentials, **client_kw) as client:
            granted = sorted(set(client.token_roles()))
    except (GraphError, PBX365Error) as exc:
        log.warning("Connection test of tenant %s failed: %s", credentials.tenant_key, exc)
        return {"ok": False, "error": str(exc), "granted": [], "features": feature_status([], checks)}
    features = feature_status(granted, checks)
    return {"ok": features.get("user_sync", {"ok": True})["ok"], "error": None, "granted": granted,
            "features": features}


def test_connection(tenant: str) -> dict:
    """The ``test-connection --json`` answer for the tenant; never raises for a connection problem.

    A feature's :attr:`~flask_pbx365.feature.Feature.probe` may mark entries that cannot work whatever is
    granted; they are not ok and carry its ``reason``.
    """
    checks = permission_checks()
    try:
        creds = credentials_for(tenant)
    except PBX365Error as exc:
        return {"ok": False, "error": str(exc), "granted": [],
                "features": {name: {"ok": False, "missing": sorted({p for alt in alts[:1] for p in alt})}
                             for name, alts in checks.items()}}
    result = check_credentials(creds, checks, **client_options())
    for feature in get_state().features:
        for name, reason in (feature.probe(tenant) if feature.probe else {}).items():
            result["features"][name] = {**result["features"].get(name, {"missing": []}), "ok": False,
                                        "reason": reason}
    remember_check(tenant, result)
    return result


_LAST_CHECK = "pbx365:connection:last:{tenant}"


def remember_check(tenant: str, result: dict) -> None:
    """Keep the tenant's latest connection test (a week) for the Overview and ``status --json``."""
    stored = {**result, "at": datetime.now(timezone.utc).isoformat()}
    get_state().redis().set(_LAST_CHECK.format(tenant=tenant), json.dumps(stored), ex=7 * 86400)


def last_check(tenant: str) -> dict | None:
    """The latest :func:`test_connection` answer of the tenant with its time (``at``), or None."""
    raw = get_state().redis().get(_LAST_CHECK.format(tenant=tenant))
    return json.loads(raw) if raw else None


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported into tests
