"""Security headers on every response of the extension's blueprints.

The admin tabs and the sign-in pages must not be framed by another site (clickjacking of the consent and
sign-out buttons), must not be cached (they show tenant configuration and per-user details), and must not leak
their URLs (which carry run ids) to other origins. The policy is deliberately small, so a host layout's own
scripts and styles keep working; a host tightens it with ``PBX365_CONTENT_SECURITY_POLICY``.
"""
from __future__ import annotations

from flask import Response, current_app


def secure(response: Response) -> Response:
    """``after_request`` handler: CSP (``frame-ancestors``), X-Frame-Options, no-store, referrer, nosniff."""
    policy = current_app.config["PBX365_CONTENT_SECURITY_POLICY"]
    if policy and "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = policy
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers["Cache-Control"] = "no-store"
    return response
