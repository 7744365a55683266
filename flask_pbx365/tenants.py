"""Per-tenant connection records: reading and saving the Configure tab and the other tabs' options."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from .clouds import Cloud, resolve_cloud
from .exceptions import NotConfiguredError
from .models import TenantConfig
from .state import get_state


def find_config(tenant: str) -> TenantConfig | None:
    return get_state().db.session.scalar(sa.select(TenantConfig).where(TenantConfig.tenant == tenant))


def get_or_create_config(tenant: str) -> TenantConfig:
    config = find_config(tenant)
    if config is None:
        config = TenantConfig(tenant=tenant, options={}, verified_redirect_uris={})
        get_state().db.session.add(config)
    return config


def save_settings(tenant: str, settings: dict[str, dict[str, Any]]) -> TenantConfig:
    """Store validated settings (see :func:`flask_pbx365.settings.validate`) and commit."""
    config = get_or_create_config(tenant)
    conf = settings["configure"]
    for field in ("client_id", "directory_id", "cloud", "login_url", "graph_url", "ca_bundle"):
        setattr(config, field, conf[field])
    config.options = {section: dict(values) for section, values in settings.items() if section != "configure"}
    get_state().db.session.commit()
    return config


def cloud_of(config: TenantConfig) -> Cloud:
    """The tenant's cloud; the listed clouds take ``PBX365_CA_BUNDLE`` as their trust when it is set."""
    cloud = resolve_cloud(config.cloud, login_url=config.login_url, graph_url=config.graph_url,
                          ca_bundle=config.ca_bundle)
    override = get_state().app.config.get("PBX365_CA_BUNDLE")
    if not cloud.is_custom and override:
        cloud = replace(cloud, ca_bundle=override)
    return cloud


def require_connection(tenant: str) -> TenantConfig:
    """The tenant's config, or :class:`NotConfiguredError` saying what is missing."""
    config = find_config(tenant)
    if config is None or not config.client_id or not config.directory_id:
        raise NotConfiguredError(
            f"Tenant {tenant!r} is not connected to Microsoft 365 yet: enter the application (client) ID and the "
            "directory (tenant) ID on the Configure tab.")
    return config
