"""The :class:`PBX365` extension object."""
from __future__ import annotations

from typing import Any, Iterable

from flask import Flask

from . import config as default_config
from .cli import build_cli
from .csrf import csrf_token
from .feature import Feature
from .features import select_features
from .host import PBXHost
from .sso import signin_button
from .sqlite import make_host_savepoints_nest
from .state import PBX365State, get_state
from .views import CONFIGURE_TAB, OVERVIEW_TAB, build_admin_blueprint, build_public_blueprint


class PBX365:
    """Microsoft 365 / Entra ID integration for a PBX portal.

    ::

        db = SQLAlchemy(app)
        pbx365 = PBX365(app, db=db, host=MyPBXHost())

    or, with an app factory, ``pbx365 = PBX365()`` then ``pbx365.init_app(app, db=db, host=MyPBXHost())``.
    ``db`` is the host's Flask-SQLAlchemy object (the extension's tables go through its session and engine);
    ``host`` implements :class:`flask_pbx365.host.PBXHost`. ``features`` replaces the list of features
    (default :data:`flask_pbx365.features.FEATURES`); ``PBX365_DISABLED_FEATURES`` switches some of them off.
    """

    def __init__(self, app: Flask | None = None, *, db: Any = None, host: PBXHost | None = None,
                 features: Iterable[Feature] | None = None):
        self.db = db
        self.host = host
        self.features = tuple(features) if features is not None else None
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

        make_host_savepoints_nest(app, db)
        features = select_features(self.features, app.config["PBX365_DISABLED_FEATURES"])
        tabs = (OVERVIEW_TAB, CONFIGURE_TAB, *(f.tab for f in features if f.tab is not None))
        app.extensions["pbx365"] = PBX365State(extension=self, app=app, db=db, host=host, features=features,
                                               tabs=tabs)
        app.register_blueprint(build_admin_blueprint(tabs), url_prefix=app.config["PBX365_ADMIN_URL_PREFIX"])
        app.register_blueprint(build_public_blueprint(features), url_prefix=app.config["PBX365_URL_PREFIX"])
        app.cli.add_command(build_cli(features))
        app.add_template_global(csrf_token, "pbx365_csrf_token")
        app.add_template_global(signin_button, "pbx365_signin_button")

    @staticmethod
    def state(app: Flask | None = None) -> PBX365State:
        """The per-app state (``app.extensions["pbx365"]``)."""
        return get_state(app)
