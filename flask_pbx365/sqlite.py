"""SQLite savepoints that keep their promise.

Python's ``sqlite3`` driver (before 3.12's ``autocommit``) opens a transaction only before the first INSERT, UPDATE
or DELETE. A ``SAVEPOINT`` issued before any write therefore starts SQLite's transaction itself, and its
``RELEASE`` commits it: a batch's "all or nothing" would quietly become "each user on its own", and a crash
mid-batch would leave half of it behind. The extension relies on savepoints (one per user when the host has no
batch operations), so it makes them nest on the SQLite engines of the host's database: when a savepoint is
about to open outside any transaction, ``BEGIN`` is issued first. Reads are not affected.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine


def _begin_before_savepoint(conn: Connection, name: str) -> None:
    raw = conn.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:
        conn.exec_driver_sql("BEGIN")


def make_savepoints_nest(engine: Engine) -> None:
    """Install the fix on ``engine`` when it is pysqlite (idempotent)."""
    if engine.dialect.name != "sqlite" or engine.dialect.driver != "pysqlite":
        return
    if not event.contains(engine, "savepoint", _begin_before_savepoint):
        event.listen(engine, "savepoint", _begin_before_savepoint)


def make_host_savepoints_nest(app: Any, db: Any) -> None:
    """:func:`make_savepoints_nest` for every engine Flask-SQLAlchemy made for ``app`` (none yet: nothing)."""
    engines = getattr(db, "_app_engines", {}).get(app, {})
    for engine in engines.values():
        make_savepoints_nest(engine)
