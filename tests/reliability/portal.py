"""The demo portal for a whole fault-matrix module: one database, migrated and seeded, with quick retries."""
from __future__ import annotations

import contextlib
from typing import Iterator

from tests.conftest import TEST_SECRET
from tests.fixtures_services import fresh_database_url


@contextlib.contextmanager
def module_portal(redis_url: str, database_url_base: str | None, directory) -> Iterator:
    """The demo app on a fresh database (SQLite file in ``directory`` or a PostgreSQL database), disposed after."""
    from demo_app import create_app
    from demo_app.models import db

    with fresh_database_url(database_url_base, directory) as url:
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "test-flask-secret",
                          "PBX365_SECRET_KEY": TEST_SECRET, "PBX365_REDIS_URL": redis_url,
                          "DEMO_EMULATOR_URL": "https://127.0.0.1:9", "DEMO_PUBLIC_URL": "http://portal.test",
                          "DEMO_SBC_URL": "https://sbc.test:8444", "PBX365_MAX_RETRIES": 3,
                          "PBX365_MAX_BACKOFF": 0.2, "PBX365_HTTP_TIMEOUT": 2})
        assert app.test_cli_runner().invoke(args=["demo", "init"]).exit_code == 0
        try:
            yield app
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
