"""The :class:`PBX365` extension object."""
from __future__ import annotations

from typing import Any

from flask import Flask

from . import config as default_config
from .host import PBXHost
from .state import PBX365State, get_state


class PBX365:
    """Microsoft 365 / Entra ID integration for a PBX portal.

    ::

        db = SQLAlchemy(app)
        pbx365 = PBX365(app, db=db, host=MyPBXHost())

    or, with an app factory, ``pbx365 = PBX365()`` then ``pbx365.init_app(app, db=db, host=MyPBXHost())``.
    ``db`` is the host's Flask-SQLAlchemy object (the extension's tables go through its session and engine);
    ``host`` implements :class:`flask_pbx365.host.PBXHost`.
    """

    def __init__(self, app: Flask | None = None, *, db: Any = None, host: PBXHost | None = None):
        self.db = db
        self.host = host
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, db: Any = None, host: PBXHost | None = None) -> None:
        """Register the extension on ``app``: config defaults, blueprints, CLI, template helpers."""
        if "pbx365" in app.extensions:
            raise RuntimeError("flask_pbx365 is already registered on this app; create one PBX365 per app.")
        db = db if db is not None else self.db
        host = host if host is not None else self.host
        if db is None or not hasattr(db, "session"):
            raise TypeError("PBX365 needs the host's Flask-SQLAlchemy object: PBX365(app, db=db, host=...).")
        if host is None or not isinstance(host, PBXHost):
            raise TypeError("PBX365 needs a host adapter implementing flask_pbx365.host.PBXHost.")
        for key, value in default_config.DEFAULTS.items():
            app.config.setdefault(key, list(value) if isinstance(value, list) else value)

        app.extensions["pbx365"] = PBX365State(extension=self, app=app, db=db, host=host)

        from .csrf import csrf_token
        from .views import admin_bp, public_bp
        from .cli import pbx365_cli

        app.register_blueprint(admin_bp, url_prefix=app.config["PBX365_ADMIN_URL_PREFIX"])
        app.register_blueprint(public_bp, url_prefix=app.config["PBX365_URL_PREFIX"])
        app.cli.add_command(pbx365_cli)
        app.add_template_global(csrf_token, "pbx365_csrf_token")
        from .sso import signin_button
        app.add_template_global(signin_button, "pbx365_signin_button")

    @staticmethod
    def state(app: Flask | None = None) -> PBX365State:
        """The per-app state (``app.extensions["pbx365"]``)."""
        return get_state(app)
