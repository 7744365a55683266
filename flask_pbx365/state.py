"""The per-app state of the extension, kept in ``app.extensions["pbx365"]``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from .crypto import KeyVault
from .feature import Feature, Tab, find_feature
from .host import PBXHost

if TYPE_CHECKING:
    from .extension import PBX365


@dataclass
class PBX365State:
    extension: "PBX365"
    app: Flask
    db: Any  # the host's flask_sqlalchemy.SQLAlchemy
    host: PBXHost
    #: The features switched on in this app, in ``FEATURES`` order.
    features: tuple[Feature, ...] = ()
    #: The admin tabs, in order: Configure, then the features' tabs.
    tabs: tuple[Tab, ...] = ()

    def feature(self, name: str) -> Feature | None:
        """The switched-on feature called ``name`` (or ``None``)."""
        return find_feature(self.features, name)

    @property
    def run_features(self) -> tuple[Feature, ...]:
        """The switched-on features that have runs (kinds), in order."""
        return tuple(f for f in self.features if f.runs)

    @property
    def vault(self) -> KeyVault:
        cfg = self.app.config
        secret = cfg.get("PBX365_SECRET_KEY") or cfg.get("SECRET_KEY")
        return KeyVault(secret, cfg.get("PBX365_SECRET_KEY_FALLBACKS") or ())

    def redis(self):
        """A Redis connection for RQ and locks (``PBX365_REDIS_URL``, else ``REDIS_URL``)."""
        from redis import Redis

        url = self.app.config.get("PBX365_REDIS_URL") or self.app.config.get("REDIS_URL") \
            or "redis://localhost:6379/0"
        return Redis.from_url(url)


def get_state(app: Flask | None = None) -> PBX365State:
    app = app or current_app
    try:
        return app.extensions["pbx365"]
    except KeyError:
        raise RuntimeError("flask_pbx365 is not initialised on this app: call PBX365(app, db=..., host=...) "
                           "or init_app first.") from None
