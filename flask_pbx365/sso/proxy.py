"""Which public domain a request came through, trusting ``X-Forwarded-*`` only from configured proxies.

The SBC (a reverse proxy) forwards requests with ``X-Forwarded-Proto/Host/For``. Those headers are applied with
werkzeug's :class:`~werkzeug.middleware.proxy_fix.ProxyFix` (one hop, explicit settings) only when the direct
peer's address is in ``PBX365_TRUSTED_PROXIES``; from anyone else they are ignored. Even then, the resulting
origin is only used when it is one of the tenant's configured public URLs: a Host header never becomes a
redirect URI by itself.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from flask import current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

from ..redirects import callback_path, redirect_uris
from ..state import get_state


def is_trusted_proxy(address: str | None) -> bool:
    """True when ``address`` is one of ``PBX365_TRUSTED_PROXIES`` (IP addresses or networks like 10.0.0.0/8)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    for entry in current_app.config.get("PBX365_TRUSTED_PROXIES") or ():
        try:
            if ip in ipaddress.ip_network(str(entry).strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def _fixed_environ(environ: dict) -> dict:
    """A copy of ``environ`` as ProxyFix (one trusted hop) rewrites it; the request itself is left alone."""
    seen: dict = {}

    def capture(env: dict, start_response: object) -> list[bytes]:
        seen.update(env)
        return []

    ProxyFix(capture, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=0)(dict(environ), None)
    return seen


def request_origin() -> str:
    """``scheme://host[:port]`` the browser used: from ``X-Forwarded-*`` only when the peer is a trusted proxy."""
    environ = request.environ
    peer = environ.get("REMOTE_ADDR")
    if is_trusted_proxy(peer):
        environ = _fixed_environ(environ)
    scheme = (environ.get("wsgi.url_scheme") or "http").lower()
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return normalize_origin(f"{scheme}://{host}")


def normalize_origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower-cased, without the scheme's default port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == {"http": 80, "https": 443}.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def public_bases(tenant: str) -> list[str]:
    """The tenant's public base URLs (portal first, then SBC), as configured in the host."""
    urls = get_state().host.public_urls(tenant)
    return [u.rstrip("/") for u in (urls.portal, urls.sbc) if u]


def matching_base(tenant: str) -> str | None:
    """The configured public base URL the current request came through, or ``None`` when it came through a
    host name that is not configured (then nothing of the request may be used to build a URL)."""
    origin = request_origin()
    return next((base for base in public_bases(tenant) if normalize_origin(base) == origin), None)


def redirect_uri_for(base: str, tenant: str) -> str:
    """The registered redirect URI of the public ``base`` URL (one of :func:`public_bases`)."""
    wanted = base.rstrip("/") + callback_path()
    for item in redirect_uris(tenant):
        if item.uri == wanted:
            return item.uri
    raise ValueError(f"{base} is not one of tenant {tenant!r}'s public URLs")
