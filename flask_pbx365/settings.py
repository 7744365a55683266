"""Every per-tenant option of every tab, as ``settings export`` writes and ``settings import`` reads them.

The schema is the single source of the option names, defaults and checks: the Configure and notifications
sections here, every other section in its feature's declaration (:attr:`flask_pbx365.feature.Feature.settings`).
The tabs, the CLI and the engines all read options through :func:`get_settings`. The validators below are the
building blocks of every section.
"""
from __future__ import annotations

import copy
import re
import uuid
from typing import Any, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from croniter import croniter

from .clouds import CLOUD_CHOICES, resolve_cloud
from .exceptions import SettingsError
from .feature import SectionSchema, Validator
from .models import TenantConfig
from .state import get_state
from .tenants import find_config, save_settings


def invalid(path: str, what: str) -> SettingsError:
    return SettingsError(f"Setting {path}: {what}.")


def boolean(path: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise invalid(path, "must be true or false")
    return v


def whole(lo: int, hi: int) -> Validator:
    def check(path: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise invalid(path, f"must be a whole number from {lo} to {hi}")
        return v
    return check


def choice(*choices: str) -> Validator:
    def check(path: str, v: Any) -> str:
        if v not in choices:
            raise invalid(path, f"must be one of {', '.join(choices)}")
        return v
    return check


def text(optional: bool = False, pattern: str | None = None, hint: str = "") -> Validator:
    def check(path: str, v: Any) -> str | None:
        if v is None or v == "":
            if optional:
                return None
            raise invalid(path, "is required")
        if not isinstance(v, str):
            raise invalid(path, "must be a string")
        v = v.strip()
        if pattern and not re.fullmatch(pattern, v):
            raise invalid(path, hint or f"must match {pattern}")
        return v
    return check


def list_of(item: Validator) -> Validator:
    def check(path: str, v: Any) -> list:
        if not isinstance(v, list):
            raise invalid(path, "must be a list")
        return [item(f"{path}[{i}]", x) for i, x in enumerate(v)]
    return check


def guid(path: str, v: Any) -> str:
    try:
        return str(uuid.UUID(str(v)))
    except ValueError as exc:
        raise invalid(path, f"{v!r} is not a GUID like 00000000-0000-0000-0000-000000000000") from exc


def optional_guid(path: str, v: Any) -> str | None:
    return None if v in (None, "") else guid(path, v)


def schedule(path: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise invalid(path, "must be a time of day like 00:00 or a cron expression like '0 */4 * * *'")
    v = v.strip()
    if re.fullmatch(r"([01]?[0-9]|2[0-3]):[0-5][0-9]", v):
        return v.zfill(5)
    if croniter.is_valid(v):
        return v
    raise invalid(path, f"{v!r} is neither a time of day (HH:MM) nor a valid cron expression")


def timezone_name(path: str, v: Any) -> str:
    try:
        ZoneInfo(str(v))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise invalid(path, f"{v!r} is not a time zone name like Europe/Berlin or UTC") from exc
    return str(v)


def extension_number(path: str, v: Any) -> str | None:
    if v in (None, ""):
        return None
    v = str(v).strip()
    if not re.fullmatch(r"[0-9]{2,10}", v):  # ASCII only: \d takes fullwidth and Arabic-Indic digits
        raise invalid(path, "must be an extension number of 2 to 10 digits, or empty for the first free one")
    return v


def region(path: str, v: Any) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z]{2}", v):
        raise invalid(path, "must be a two-letter country code like US or DE")
    return v.upper()


def email(path: str, v: Any) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v.strip()):
        raise invalid(path, f"{v!r} is not an email address")
    return v.strip()


def optional_email(path: str, v: Any) -> str | None:
    return None if v in (None, "") else email(path, v)


_CLOUDS = tuple(name for name, _ in CLOUD_CHOICES)

#: The Configure tab's section, first in every export.
CONFIGURE: SectionSchema = {
    "client_id": (None, optional_guid),
    "directory_id": (None, optional_guid),
    "cloud": ("global", choice(*_CLOUDS)),
    "login_url": (None, text(optional=True, pattern=r"https://\S+", hint="must be an https:// URL")),
    "graph_url": (None, text(optional=True, pattern=r"https://\S+", hint="must be an https:// URL")),
    "ca_bundle": (None, text(optional=True)),
}
#: Change notifications, last in every export.
NOTIFICATIONS: SectionSchema = {
    "enabled": (True, boolean),
}


def schema() -> dict[str, SectionSchema]:
    """section -> option -> (default, validator): Configure, each switched-on feature's sections, notifications."""
    sections: dict[str, SectionSchema] = {"configure": CONFIGURE}
    for feature in get_state().features:
        sections.update(feature.settings)
    sections["notifications"] = NOTIFICATIONS
    return sections


def defaults(sections: dict[str, SectionSchema] | None = None) -> dict[str, dict[str, Any]]:
    """The settings of a tenant nobody configured yet."""
    sections = sections if sections is not None else schema()
    return {section: {k: copy.deepcopy(d) for k, (d, _) in opts.items()} for section, opts in sections.items()}


def validate(data: Any, *, base: dict | None = None) -> dict[str, dict[str, Any]]:
    """Merge ``data`` over ``base`` (default: :func:`defaults`), checking every key and value.

    An unknown section or key is refused; an absent one keeps its value in ``base``.
    """
    sections = schema()
    if not isinstance(data, dict):
        raise SettingsError("Settings must be a JSON object with the sections "
                            f"{', '.join(sections)}.")
    merged = copy.deepcopy(base) if base is not None else defaults(sections)
    for section, values in data.items():
        if section not in sections:
            raise SettingsError(f"Unknown settings section {section!r}; known: {', '.join(sections)}.")
        if not isinstance(values, dict):
            raise SettingsError(f"Settings section {section!r} must be an object.")
        for key, value in values.items():
            if key not in sections[section]:
                raise SettingsError(f"Unknown setting {section}.{key}; known in {section}: "
                                    f"{', '.join(sections[section])}.")
            merged[section][key] = sections[section][key][1](f"{section}.{key}", value)
    conf = merged["configure"]
    if conf["cloud"] == "custom" or conf["login_url"] or conf["graph_url"]:
        if conf["cloud"] == "custom":
            resolve_cloud("custom", login_url=conf["login_url"], graph_url=conf["graph_url"])
    return merged


def get_settings(tenant: str) -> dict[str, dict[str, Any]]:
    """The tenant's current settings, every option present (defaults for what was never set)."""
    return _merged(find_config(tenant), schema())


def stored_settings(tenants: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`get_settings` of each of ``tenants`` that has stored settings, in one query per 500 tenants (the
    others have :func:`defaults`): what the scheduler reads on every pass."""
    keys = list(dict.fromkeys(tenants))
    sections = schema()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    session = get_state().db.session
    for start in range(0, len(keys), 500):
        for config in session.scalars(sa.select(TenantConfig).where(TenantConfig.tenant.in_(keys[start:start + 500]))):
            out[config.tenant] = _merged(config, sections)
    return out


def _merged(config: TenantConfig | None, sections: dict[str, SectionSchema]) -> dict[str, dict[str, Any]]:
    merged = defaults(sections)
    if config is None:
        return merged
    merged["configure"].update(client_id=config.client_id, directory_id=config.directory_id,
                               cloud=config.cloud, login_url=config.login_url, graph_url=config.graph_url,
                               ca_bundle=config.ca_bundle)
    for section, values in (config.options or {}).items():
        if section in merged and isinstance(values, dict):
            merged[section].update({k: v for k, v in values.items() if k in sections[section]})
    return merged


def export_settings(tenant: str) -> dict[str, dict[str, Any]]:
    """Every option of every tab, as ``flask pbx365 settings export`` writes it."""
    return get_settings(tenant)


def import_settings(tenant: str, data: Any) -> dict[str, dict[str, Any]]:
    """Validate ``data`` and store it; absent keys keep their values. Nothing is stored when anything is wrong."""
    merged = validate(data, base=get_settings(tenant))
    save_settings(tenant, merged)
    return merged
