"""The demo multi-tenant PBX portal: the reference host of flask_pbx365.

``flask --app demo_app run`` serves it; ``flask --app demo_app demo init`` migrates and seeds its database.
"""
from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask_migrate import Migrate

from .models import db

MIGRATIONS_DIR = str(Path(__file__).with_name("migrations"))


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the portal. Configuration comes from the environment (see README), then ``test_config``."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY=_env("SECRET_KEY", "demo-dev-secret-key-change-me"),
        SQLALCHEMY_DATABASE_URI=os.environ.get("DATABASE_URL")
        or "sqlite:///" + os.path.join(app.instance_path, "demo.sqlite3"),
        PBX365_SECRET_KEY=_env("PBX365_SECRET_KEY", "demo-dev-pbx365-secret-change-me"),
        PBX365_REDIS_URL=os.environ.get("REDIS_URL"),
        PBX365_BASE_TEMPLATE="admin/pbx365_base.html",
        PBX365_ADMIN_URL_PREFIX="/admin/integrations/microsoft365",
        PBX365_URL_PREFIX="/integrations/microsoft365",
        # The SBC on this machine forwards X-Forwarded-*; the extension builds redirect URIs from them.
        PBX365_TRUSTED_PROXIES=[p for p in _env("DEMO_TRUSTED_PROXIES", "127.0.0.1,::1").split(",") if p],
        DEMO_API_TOKEN=_env("DEMO_API_TOKEN", "demo-api-token"),
        DEMO_PASSWORD_METHOD=_env("DEMO_PASSWORD_METHOD", "scrypt"),
        DEMO_PUBLIC_URL=_env("DEMO_PUBLIC_URL", "http://localhost:5000"),
        DEMO_SBC_URL=_env("DEMO_SBC_URL", "https://localhost:8444"),
        DEMO_SMTP_HOST=os.environ.get("DEMO_SMTP_HOST") or None,
        DEMO_SMTP_PORT=int(_env("DEMO_SMTP_PORT", "25")),
        DEMO_MAIL_FROM=_env("DEMO_MAIL_FROM", "pbx@localhost"),
        DEMO_EMULATOR_URL=_env("DEMO_EMULATOR_URL", "https://127.0.0.1:8443"),
        DEMO_EMULATOR_CA=_env("DEMO_EMULATOR_CA", os.path.join(".demo", "emulator", "ca.pem")),
    )
    if test_config:
        app.config.update(test_config)
    if app.testing and "DEMO_PASSWORD_METHOD" not in (test_config or {}):
        # scrypt costs ~0.1 s a hash; seeding every test's database would dominate the suite's run time.
        app.config["DEMO_PASSWORD_METHOD"] = "pbkdf2:sha256:1000"
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///" + app.instance_path):
        os.makedirs(app.instance_path, exist_ok=True)

    db.init_app(app)
    _tune_sqlite(app)
    Migrate(app, db, directory=MIGRATIONS_DIR)

    from . import admin, api, web
    from .auth import current_admin, current_web_user
    from .cli import demo_cli
    from .csrf import csrf_token

    for blueprint in (admin.bp, web.bp, api.bp):
        app.register_blueprint(blueprint)
    app.cli.add_command(demo_cli)
    app.jinja_env.globals.update(csrf_token=csrf_token, current_admin=current_admin,
                                 current_web_user=current_web_user)
    app.after_request(_security_headers)
    _mount_extension(app)
    return app


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # A 16 MB page cache keeps a 100k-user tenant's indexes in memory. Not WAL: there a transaction that read
    # before another connection's commit cannot write at all (SQLITE_BUSY_SNAPSHOT, no busy wait), and the portal,
    # the scheduler and the worker write the same run rows concurrently.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA cache_size=-16384")
    cursor.close()


def _tune_sqlite(app: Flask) -> None:
    """The pragmas a multi-process web app wants from SQLite, on each new connection of the portal's engines."""
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite" and not sa.event.contains(engine, "connect", _sqlite_pragmas):
                sa.event.listen(engine, "connect", _sqlite_pragmas)


def _security_headers(response):
    """The portal's own pages get what the extension's get: no framing by other sites, no sniffing, no caching
    of pages (they show sessions and per-user data). The extension's headers, set first, are kept."""
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'self'; object-src 'none'; "
                                                           "base-uri 'self'")
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _mount_extension(app: Flask) -> None:
    # The extension is written alongside the demo; until its PBX365 class exists the portal runs without it.
    try:
        from flask_pbx365 import PBX365
    except ImportError:
        app.logger.warning("flask_pbx365.PBX365 is not available; the Microsoft 365 pages are missing")
        return
    from .host import DemoHost

    PBX365().init_app(app, db=db, host=DemoHost())
