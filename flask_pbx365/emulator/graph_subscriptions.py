"""Graph subscriptions and change notifications (owned by E2)."""
from __future__ import annotations

from flask import Blueprint

subscriptions_bp = Blueprint("m365_subscriptions", __name__)


def init_store(store) -> None:
    """Hook called by ``create_app`` once the store exists (register change listeners here)."""
