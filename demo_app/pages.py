"""Blueprints of the demo's HTML pages: CSRF-checked forms and the portal's own error page."""
from __future__ import annotations

from flask import Blueprint, render_template
from werkzeug.exceptions import HTTPException

from .csrf import check_csrf


def html_blueprint(name: str, import_name: str, **options) -> Blueprint:
    """A blueprint whose state-changing requests must carry the CSRF token, with friendly error pages."""
    blueprint = Blueprint(name, import_name, **options)
    blueprint.before_request(check_csrf)

    def error_page(exc: HTTPException):
        return render_template("error.html", error=exc), exc.code
    for code in (400, 403, 404, 409):
        blueprint.register_error_handler(code, error_page)
    return blueprint
