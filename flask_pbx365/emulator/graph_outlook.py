"""Graph contacts, contact folders and events (owned by E2)."""
from __future__ import annotations

from flask import Blueprint

outlook_bp = Blueprint("m365_outlook", __name__)
