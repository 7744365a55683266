"""CSRF protection for the extension's forms: a per-session token, checked on every state-changing request."""
from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session

_SESSION_KEY = "_pbx365_csrf"
FIELD = "csrf_token"


def csrf_token() -> str:
    """The session's token, for a hidden ``csrf_token`` field (template global ``pbx365_csrf_token()``)."""
    token = session.get(_SESSION_KEY)
    if not token:
        token = session[_SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def protect() -> None:
    """Abort with 400 unless a POST/PUT/PATCH/DELETE carries the session's token (form field or X-CSRF-Token)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get(FIELD) or request.headers.get("X-CSRF-Token") or ""
    expected = session.get(_SESSION_KEY) or ""
    if not expected or not hmac.compare_digest(sent, expected):
        abort(400, description="The form has expired or did not come from this portal (CSRF check failed). "
                               "Reload the page and try again.")
