"""A small session-based CSRF guard for the demo's own HTML forms.

Each session gets one random token; every state-changing form request to a guarded blueprint must echo it in the
``csrf_token`` field (or the ``X-CSRF-Token`` header). The JSON API authenticates with a bearer token and is not
guarded; neither are the extension's routes, which have their own protection.
"""
from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session

SESSION_KEY = "_csrf_token"
FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def csrf_token() -> str:
    """The session's token (created on first use); templates put it in a hidden ``csrf_token`` field."""
    token = session.get(SESSION_KEY)
    if not token:
        token = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse (400) a state-changing request whose token is missing or wrong."""
    if request.method in SAFE_METHODS:
        return
    expected = session.get(SESSION_KEY)
    sent = request.form.get(FIELD) or request.headers.get("X-CSRF-Token")
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        abort(400, description="The form has expired or did not come from this portal (CSRF token missing or "
                               "invalid). Reload the page and try again.")

