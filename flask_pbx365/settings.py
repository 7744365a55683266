"""Every per-tenant option of every tab, as ``settings export`` writes and ``settings import`` reads them.

The schema below is the single source of the option names, defaults and checks; the tabs, the CLI and the sync
engines all read options through :func:`get_settings`. Options of features that land later are stored already.
"""
from __future__ import annotations

import copy
import re
import uuid
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .clouds import CLOUD_CHOICES, resolve_cloud
from .exceptions import SettingsError
from .host import PRESENCE_STATUSES

Validator = Callable[[str, Any], Any]


def _fail(path: str, what: str) -> SettingsError:
    return SettingsError(f"Setting {path}: {what}.")


def _bool(path: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise _fail(path, "must be true or false")
    return v


def _int(lo: int, hi: int) -> Validator:
    def check(path: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise _fail(path, f"must be a whole number from {lo} to {hi}")
        return v
    return check


def _choice(*choices: str) -> Validator:
    def check(path: str, v: Any) -> str:
        if v not in choices:
            raise _fail(path, f"must be one of {', '.join(choices)}")
        return v
    return check


def _str(optional: bool = False, pattern: str | None = None, hint: str = "") -> Validator:
    def check(path: str, v: Any) -> str | None:
        if v is None or v == "":
            if optional:
                return None
            raise _fail(path, "is required")
        if not isinstance(v, str):
            raise _fail(path, "must be a string")
        v = v.strip()
        if pattern and not re.fullmatch(pattern, v):
            raise _fail(path, hint or f"must match {pattern}")
        return v
    return check


def _list(item: Validator) -> Validator:
    def check(path: str, v: Any) -> list:
        if not isinstance(v, list):
            raise _fail(path, "must be a list")
        return [item(f"{path}[{i}]", x) for i, x in enumerate(v)]
    return check


def _guid(path: str, v: Any) -> str:
    try:
        return str(uuid.UUID(str(v)))
    except ValueError as exc:
        raise _fail(path, f"{v!r} is not a GUID like 00000000-0000-0000-0000-000000000000") from exc


def _optional_guid(path: str, v: Any) -> str | None:
    return None if v in (None, "") else _guid(path, v)


def _schedule(path: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise _fail(path, "must be a time of day like 00:00 or a cron expression like '0 */4 * * *'")
    v = v.strip()
    if re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", v):
        return v.zfill(5)
    if croniter.is_valid(v):
        return v
    raise _fail(path, f"{v!r} is neither a time of day (HH:MM) nor a valid cron expression")


def _timezone(path: str, v: Any) -> str:
    try:
        ZoneInfo(str(v))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _fail(path, f"{v!r} is not a time zone name like Europe/Berlin or UTC") from exc
    return str(v)


def _extension(path: str, v: Any) -> str | None:
    if v in (None, ""):
        return None
    v = str(v).strip()
    if not re.fullmatch(r"\d{2,10}", v):
        raise _fail(path, "must be an extension number of 2 to 10 digits, or empty for the first free one")
    return v


def _region(path: str, v: Any) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z]{2}", v):
        raise _fail(path, "must be a two-letter country code like US or DE")
    return v.upper()


def _email(path: str, v: Any) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v.strip()):
        raise _fail(path, f"{v!r} is not an email address")
    return v.strip()


def _optional_email(path: str, v: Any) -> str | None:
    return None if v in (None, "") else _email(path, v)


def _presence_mapping(path: str, v: Any) -> dict:
    if not isinstance(v, dict):
        raise _fail(path, "must be an object mapping Outlook showAs values to PBX statuses")
    show_as = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
    out = {}
    for key, status in v.items():
        if key not in show_as:
            raise _fail(f"{path}.{key}", f"is not an Outlook showAs value ({', '.join(show_as)})")
        if status is not None and status not in PRESENCE_STATUSES:
            raise _fail(f"{path}.{key}", f"must be null or one of {', '.join(PRESENCE_STATUSES)}")
        out[key] = status
    return out


_CLOUDS = tuple(name for name, _ in CLOUD_CHOICES)

#: section -> option -> (default, validator)
SCHEMA: dict[str, dict[str, tuple[Any, Validator]]] = {
    "configure": {
        "client_id": (None, _optional_guid),
        "directory_id": (None, _optional_guid),
        "cloud": ("global", _choice(*_CLOUDS)),
        "login_url": (None, _str(optional=True, pattern=r"https://\S+", hint="must be an https:// URL")),
        "graph_url": (None, _str(optional=True, pattern=r"https://\S+", hint="must be an https:// URL")),
        "ca_bundle": (None, _str(optional=True)),
    },
    "user_sync": {
        "mode": ("manual", _choice("manual", "automatic")),
        "schedule": ("00:00", _schedule),
        "timezone": ("UTC", _timezone),
        "departments": ([], _list(_str())),
        "groups": ([], _list(_guid)),
        "users": ([], _list(_guid)),
        "members_only": (True, _bool),
        "start_extension": (None, _extension),
        "extension_group": ("Microsoft 365", _str()),
        "photos": (False, _bool),
        "caller_id_from_office_phone": (False, _bool),
        "default_region": ("US", _region),
        "link_existing": (True, _bool),
        "deprovision": ("disable", _choice("disable", "delete", "keep")),
        "delete_after_days": (30, _int(0, 3650)),
        "guard_percent": (10, _int(0, 100)),
        "guard_max": (500, _int(0, 1_000_000)),
        "write_back_phone": (False, _bool),
    },
    "sign_in": {
        "enabled": (False, _bool),
        "who": ("all", _choice("all", "users", "groups")),
        "users": ([], _list(_guid)),
        "groups": ([], _list(_guid)),
        "targets": (["admin", "web", "app"], _list(_choice("admin", "web", "app"))),
        "mode": ("microsoft_or_password", _choice("microsoft_or_password", "microsoft_only")),
        "app_redirect_uris": ([], _list(_str(pattern=r"[a-zA-Z][a-zA-Z0-9+.-]*:\S+",
                                             hint="must be a URI such as myapp://auth or http://127.0.0.1/cb"))),
    },
    "contacts": {
        "personal": (False, _bool),
        "shared_mailboxes": ([], _list(_email)),
        "mode": ("manual", _choice("manual", "automatic")),
        "schedule": ("00:00", _schedule),
    },
    "mail": {
        "enabled": (False, _bool),
        "sender": (None, _optional_email),
        "save_to_sent_items": (True, _bool),
    },
    "presence": {
        "enabled": (False, _bool),
        "mapping": ({"busy": "dnd", "workingElsewhere": "dnd", "oof": "away", "tentative": None},
                    _presence_mapping),
    },
    "notifications": {
        "enabled": (True, _bool),
    },
}


def defaults() -> dict[str, dict[str, Any]]:
    """The settings of a tenant nobody configured yet."""
    return {section: {k: copy.deepcopy(d) for k, (d, _) in opts.items()} for section, opts in SCHEMA.items()}


def validate(data: Any, *, base: dict | None = None) -> dict[str, dict[str, Any]]:
    """Merge ``data`` over ``base`` (default: :func:`defaults`), checking every key and value.

    An unknown section or key is refused; an absent one keeps its value in ``base``.
    """
    if not isinstance(data, dict):
        raise SettingsError("Settings must be a JSON object with the sections "
                            f"{', '.join(SCHEMA)}.")
    merged = copy.deepcopy(base) if base is not None else defaults()
    for section, values in data.items():
        if section not in SCHEMA:
            raise SettingsError(f"Unknown settings section {section!r}; known: {', '.join(SCHEMA)}.")
        if not isinstance(values, dict):
            raise SettingsError(f"Settings section {section!r} must be an object.")
        for key, value in values.items():
            if key not in SCHEMA[section]:
                raise SettingsError(f"Unknown setting {section}.{key}; known in {section}: "
                                    f"{', '.join(SCHEMA[section])}.")
            merged[section][key] = SCHEMA[section][key][1](f"{section}.{key}", value)
    conf = merged["configure"]
    if conf["cloud"] == "custom" or conf["login_url"] or conf["graph_url"]:
        if conf["cloud"] == "custom":
            resolve_cloud("custom", login_url=conf["login_url"], graph_url=conf["graph_url"])
    return merged


def get_settings(tenant: str) -> dict[str, dict[str, Any]]:
    """The tenant's current settings, every option present (defaults for what was never set)."""
    from .tenants import find_config

    config = find_config(tenant)
    merged = defaults()
    if config is None:
        return merged
    merged["configure"].update(client_id=config.client_id, directory_id=config.directory_id,
                               cloud=config.cloud, login_url=config.login_url, graph_url=config.graph_url,
                               ca_bundle=config.ca_bundle)
    for section, values in (config.options or {}).items():
        if section in merged and isinstance(values, dict):
            merged[section].update({k: v for k, v in values.items() if k in SCHEMA[section]})
    return merged


def export_settings(tenant: str) -> dict[str, dict[str, Any]]:
    """Every option of every tab, as ``flask pbx365 settings export`` writes it."""
    return get_settings(tenant)


def import_settings(tenant: str, data: Any) -> dict[str, dict[str, Any]]:
    """Validate ``data`` and store it; absent keys keep their values. Nothing is stored when anything is wrong."""
    from .tenants import save_settings

    merged = validate(data, base=get_settings(tenant))
    save_settings(tenant, merged)
    return merged
