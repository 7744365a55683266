"""Running the extension's own Alembic migrations beside the host's.

The migrations live in the top-level ``migrations/`` folder of the source tree and ship inside the package as
``flask_pbx365.migrations`` (see setup.py); they keep their revision in the table ``pbx365_alembic_version``, so
they never collide with the host's ``alembic_version``. Run them with ``upgrade_database()`` (or
``flask pbx365 db upgrade``) after the host's own migrations.
"""
from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from flask import Flask, current_app

from .state import get_state

VERSION_TABLE = "pbx365_alembic_version"


def _migrations_dir() -> Path:
    """The installed ``flask_pbx365.migrations`` package, else the source tree's ``migrations/`` beside the package."""
    spec = find_spec("flask_pbx365.migrations")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(__file__).resolve().parent.parent / "migrations"


MIGRATIONS_DIR = _migrations_dir()


def alembic_config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade_database(revision: str = "head", app: Flask | None = None) -> None:
    """Bring the extension's tables up to ``revision`` on the host's database."""
    from alembic import command

    app = app or current_app._get_current_object()
    with app.app_context():
        engine = get_state(app).db.engine
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)


def downgrade_database(revision: str, app: Flask | None = None) -> None:
    from alembic import command

    app = app or current_app._get_current_object()
    with app.app_context():
        with get_state(app).db.engine.begin() as connection:
            command.downgrade(alembic_config(connection), revision)
