"""A savepoint opened before any write must not commit on RELEASE (pysqlite's legacy transaction handling)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from flask_pbx365.sqlite import make_savepoints_nest


def _kept_after_rollback(tmp_path, fixed: bool) -> int:
    engine = sa.create_engine(f"sqlite:///{tmp_path / ('fixed' if fixed else 'plain')}.db")
    if fixed:
        make_savepoints_nest(engine)
        make_savepoints_nest(engine)  # idempotent
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with Session(engine) as session:
        session.execute(sa.text("SELECT 1"))
        with session.begin_nested():
            session.execute(sa.text("INSERT INTO t VALUES (1)"))
        session.rollback()
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM t").scalar()


def test_a_rolled_back_transaction_undoes_what_its_savepoint_wrote(tmp_path):
    assert _kept_after_rollback(tmp_path, fixed=True) == 0


def test_without_the_fix_the_driver_commits_on_release(tmp_path):
    """The reason for the fix: proves the scenario above is real on this Python."""
    kept = _kept_after_rollback(tmp_path, fixed=False)
    if kept == 0:
        pytest.skip("this sqlite3 driver already nests savepoints")
    assert kept == 1


def test_the_extension_fixes_the_hosts_sqlite_engine(app):
    from flask_pbx365.sqlite import _begin_before_savepoint
    from flask_pbx365.state import get_state

    with app.app_context():
        engine = get_state(app).db.engine
        if engine.dialect.name != "sqlite":
            pytest.skip("the PostgreSQL pass: savepoints nest already")
        assert sa.event.contains(engine, "savepoint", _begin_before_savepoint)
