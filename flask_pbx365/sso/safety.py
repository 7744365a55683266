"""Return URLs limited to the portal's own paths, and one-time values kept in Redis."""
from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError
from ..state import get_state

_KEY = "pbx365:sso:{kind}:{digest}"
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this portal (``/me?tab=1``), else ``None``.

    Refused: absolute and scheme-relative URLs (``https://evil``, ``//evil``), backslashes (browsers read
    ``/\\evil`` as ``//evil``), control characters and whitespace, and anything not starting with ``/``.
    """
    if not target or not isinstance(target, str) or len(target) > 2000:
        return None
    if not target.startswith("/") or target.startswith("//") or _UNSAFE.search(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _key(kind: str, value: str) -> str:
    return _KEY.format(kind=kind, digest=hashlib.sha256(value.encode()).hexdigest())


def _redis():
    from redis.exceptions import RedisError

    try:
        conn = get_state().redis()
        conn.ping()
    except RedisError as exc:
        raise ConfigurationError("Sign in with Microsoft needs Redis (PBX365_REDIS_URL or REDIS_URL), which is not "
                                 f"reachable: {exc}.") from exc
    return conn


def use_once(kind: str, value: str, ttl: int) -> bool:
    """Mark ``value`` used; False when it already was (a replay), across processes and browser cookies."""
    return bool(_redis().set(_key(kind, value), b"1", nx=True, ex=max(1, int(ttl))))


def put_once(kind: str, value: str, data: dict, ttl: int) -> None:
    """Keep ``data`` under ``value`` for ``ttl`` seconds, to be read once by :func:`take_once`."""
    _redis().set(_key(kind, value), json.dumps(data), ex=max(1, int(ttl)))


def take_once(kind: str, value: str) -> dict | None:
    """The data kept under ``value``, deleted in the same step (so a second use finds nothing)."""
    if not value:
        return None
    raw = _redis().getdel(_key(kind, value))
    return json.loads(raw) if raw else None
