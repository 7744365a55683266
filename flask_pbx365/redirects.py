"""The OAuth redirect URIs a tenant registers in Entra: one per public domain (portal, and SBC when present)."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .state import get_state


@dataclass(frozen=True)
class RedirectURI:
    role: str           # "portal" or "sbc"
    label: str          # "Portal domain" / "SBC domain"
    uri: str
    changed: bool       # differs from the URI of the same domain that last completed an OAuth round trip


def callback_path() -> str:
    return current_app.config["PBX365_URL_PREFIX"].rstrip("/") + "/oauth2/callback"


def redirect_uris(tenant: str, verified: dict[str, str] | None = None) -> list[RedirectURI]:
    """The tenant's redirect URIs, flagged when a domain changed since its last successful sign-in or consent.

    ``verified`` maps a role (``portal``, ``sbc``) to the URI that last completed an OAuth round trip.
    """
    urls = get_state().host.public_urls(tenant)
    verified = verified if isinstance(verified, dict) else {}
    out = []
    for role, label, base in (("portal", "Portal domain", urls.portal), ("sbc", "SBC domain", urls.sbc)):
        if base:
            uri = base.rstrip("/") + callback_path()
            out.append(RedirectURI(role, label, uri, role in verified and verified[role] != uri))
    return out


def record_verified(tenant: str, verified: dict[str, str] | None, uri: str) -> dict[str, str]:
    """``verified`` updated with ``uri``, which just completed an OAuth round trip."""
    updated = dict(verified) if isinstance(verified, dict) else {}
    for item in redirect_uris(tenant):
        if item.uri == uri:
            updated[item.role] = uri
    return updated


def redirect_uri_for_request(tenant: str, request_origin: str) -> str:
    """The redirect URI of the domain the admin came through (portal or SBC); the portal's otherwise.

    ``request_origin`` must already be trusted (ProxyFix only for configured proxies): a Host header outside the
    tenant's public URLs never becomes a redirect URI.
    """
    uris = redirect_uris(tenant)
    origin = request_origin.rstrip("/").lower()
    for item in uris:
        if item.uri.lower().startswith(origin + "/"):
            return item.uri
    return uris[0].uri
