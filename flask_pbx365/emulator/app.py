"""The emulator's Flask application: Entra at ``/{tenant}/...``, Graph at ``/v1.0/...``, admin at ``/_emulator``."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import admin_outlook, graph_mail, graph_outlook, graph_presence, graph_subscriptions
from .graph_common import GraphHTTPError, add_standard_headers, error_response
from .keys import SigningKeys
from .store import Store
from .throttle import Throttle
from .traffic import Traffic, TrafficMiddleware


def _token_secret(state_dir: str | os.PathLike) -> bytes:
    """The HMAC secret of skip/delta/refresh tokens, kept in the state dir so restarts keep links valid."""
    path = Path(state_dir) / "token-secret"
    if path.exists():
        return path.read_bytes()
    secret = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    return secret


def _is_graph() -> bool:
    return request.path.startswith(("/v1.0", "/beta"))


def create_app(state_dir: str | os.PathLike, *, base_url: str | None = None) -> Flask:
    """Build the emulator app; ``base_url`` (``B``) is what nextLinks, issuers and discovery URLs use
    (default: the URL each request came in on)."""
    from .admin import admin_bp
    from .entra import entra_bp
    from .graph_batch import batch_bp
    from . import graph_delta  # noqa: F401  (adds /users/delta to directory_bp)
    from .graph_directory import directory_bp
    from .ui import ui_bp
    from . import entra_login  # noqa: F401  (registers the sign-in routes on entra_bp)

    app = Flask(__name__)
    secret = _token_secret(state_dir)
    app.config.update(M365_BASE_URL=base_url.rstrip("/") if base_url else None, M365_TOKEN_SECRET=secret,
                      M365_STATE_DIR=str(state_dir), SECRET_KEY=secret, SESSION_COOKIE_NAME="ESTSAUTH",
                      SESSION_COOKIE_SECURE=True, SESSION_COOKIE_SAMESITE="None", JSON_SORT_KEYS=False,
                      MAX_CONTENT_LENGTH=200 * 1024 * 1024)
    app.json.sort_keys = False
    store = Store()
    traffic = Traffic()
    app.extensions.update(m365_store=store, m365_keys=SigningKeys(), m365_traffic=traffic,
                          m365_throttle=Throttle())
    # Graph's routes (literal segments) before Entra's catch-all /<tenant>/... routes.
    for bp in (directory_bp, batch_bp, graph_outlook.outlook_bp, graph_mail.mail_bp,
               graph_subscriptions.subscriptions_bp, graph_presence.presence_bp, admin_bp, admin_outlook.admin_outlook_bp,
               ui_bp, entra_bp):
        app.register_blueprint(bp)
    graph_subscriptions.init_store(store)

    @app.errorhandler(GraphHTTPError)
    def _graph_error(err: GraphHTTPError) -> Response:
        return err.response()

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        if not _is_graph():
            return err
        if err.code == 405:
            return error_response(405, "Request_BadRequest",
                                  "Specified HTTP method is not allowed for the request target.")
        if err.code == 404:
            segment = request.path.rstrip("/").rsplit("/", 1)[-1]
            return error_response(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        return error_response(err.code or 500, "BadRequest", err.description or "Bad request.")

    @app.after_request
    def _headers(resp: Response) -> Response:
        if _is_graph():
            add_standard_headers(resp)
        return resp

    app.wsgi_app = TrafficMiddleware(app.wsgi_app, traffic)
    return app
