"""Graph sendMail, drafts, send and upload sessions (owned by E2)."""
from __future__ import annotations

from flask import Blueprint

mail_bp = Blueprint("m365_mail", __name__)
