"""The Microsoft clouds a tenant can live in, with their sign-in and Graph endpoints.

Sources: Microsoft Graph "National cloud deployments" (graph-facts: deployments). GCC (moderate) uses the
global endpoints; GCC High is ``usgov``; DoD is ``usgov-dod``; 21Vianet is ``china``. ``custom`` takes its
endpoints (and an optional CA bundle) from the tenant's Configure tab: the emulator, or a cloud not listed.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .exceptions import ConfigurationError


@dataclass(frozen=True)
class Cloud:
    """Endpoints of one Microsoft cloud."""

    name: str
    label: str
    login_url: str
    graph_url: str
    ca_bundle: str | None = None

    @property
    def graph_host(self) -> str:
        return urlsplit(self.graph_url).netloc.lower()

    @property
    def graph_scope(self) -> str:
        """The ``.default`` scope for app-only Graph tokens in this cloud."""
        return self.graph_url.rstrip("/") + "/.default"

    def authority(self, directory_id: str) -> str:
        """The tenant's own authority: never ``/common`` (single-tenant apps reject it)."""
        return f"{self.login_url.rstrip('/')}/{directory_id}"

    def issuer(self, directory_id: str) -> str:
        return f"{self.authority(directory_id)}/v2.0"

    @property
    def is_custom(self) -> bool:
        return self.name == "custom"


CLOUDS: dict[str, Cloud] = {
    "global": Cloud("global", "Global", "https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgov": Cloud("usgov", "US Government (GCC High)", "https://login.microsoftonline.us",
                   "https://graph.microsoft.us"),
    "usgov-dod": Cloud("usgov-dod", "US Government DoD", "https://login.microsoftonline.us",
                       "https://dod-graph.microsoft.us"),
    "china": Cloud("china", "China (21Vianet)", "https://login.chinacloudapi.cn",
                   "https://microsoftgraph.chinacloudapi.cn"),
}

CLOUD_CHOICES: list[tuple[str, str]] = [(c.name, c.label) for c in CLOUDS.values()] + [("custom", "Custom")]


def resolve_cloud(name: str, *, login_url: str | None = None, graph_url: str | None = None,
                  ca_bundle: str | None = None) -> Cloud:
    """Return the :class:`Cloud` for ``name``; ``custom`` needs ``login_url`` and ``graph_url``."""
    if name in CLOUDS:
        return CLOUDS[name]
    if name != "custom":
        raise ConfigurationError(f"Unknown cloud {name!r}: choose one of {', '.join(n for n, _ in CLOUD_CHOICES)}.")
    if not login_url or not graph_url:
        raise ConfigurationError("The custom cloud needs both a login URL and a Graph URL.")
    for label, url in (("login URL", login_url), ("Graph URL", graph_url)):
        if urlsplit(url).scheme != "https":
            raise ConfigurationError(f"The custom cloud's {label} must start with https:// (got {url!r}).")
    return Cloud("custom", "Custom", login_url.rstrip("/"), graph_url.rstrip("/"), ca_bundle or None)
