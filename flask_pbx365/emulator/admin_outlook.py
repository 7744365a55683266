"""Admin API routes for contacts, contact folders, events, outbox and subscriptions (owned by E2)."""
from __future__ import annotations

from flask import Blueprint

admin_outlook_bp = Blueprint("m365_admin_outlook", __name__)
