"""The declaration of Sign in with Microsoft: the Sign In tab, its settings and its public routes."""
from __future__ import annotations

from ..feature import Feature
from ..settings import boolean, choice, guid, list_of, text
from .routes import routes
from .tab import TAB

FEATURE = Feature(
    name="sign_in",
    label="Sign in with Microsoft",
    settings={"sign_in": {
        "enabled": (False, boolean),
        "who": ("all", choice("all", "users", "groups")),
        "users": ([], list_of(guid)),
        "groups": ([], list_of(guid)),
        "targets": (["admin", "web", "app"], list_of(choice("admin", "web", "app"))),
        "mode": ("microsoft_or_password", choice("microsoft_or_password", "microsoft_only")),
        "app_redirect_uris": ([], list_of(text(pattern=r"[a-zA-Z][a-zA-Z0-9+.-]*:\S+",
                                               hint="must be a URI such as myapp://auth or http://127.0.0.1/cb"))),
    }},
    tab=TAB,
    public_routes=routes,
)
