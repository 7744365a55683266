"""``database_url`` gives every test its own empty database, dropped afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.fixtures_services import fresh_database_url


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize("table", ["alpha", "beta"])
def test_tests_do_not_share_a_database(database_url: str, table: str) -> None:
    # Both cases create the same table: the second would fail on a shared database.
    assert _tables(database_url) == []
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE marker (id INTEGER PRIMARY KEY, name VARCHAR(20))"))
            conn.execute(sa.text("INSERT INTO marker (id, name) VALUES (1, :n)"), {"n": table})
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM marker")).scalars().all() == [table]
    finally:
        engine.dispose()


def test_database_kind_follows_the_environment(database_url: str, database_url_base: str | None) -> None:
    if database_url_base is None:
        assert database_url.startswith("sqlite:///")
    else:
        assert database_url.startswith("postgresql")
        assert database_url != database_url_base


def test_fresh_database_is_removed_afterwards(database_url_base: str | None, tmp_path: Path) -> None:
    with fresh_database_url(database_url_base, tmp_path) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id INTEGER)"))
        engine.dispose()
        name = sa.engine.make_url(url).database
    if database_url_base is None:
        # SQLite files live in tmp_path, which pytest cleans; only check it was a real file.
        assert Path(name).exists()
        return
    engine = sa.create_engine(database_url_base)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).all()
    finally:
        engine.dispose()
    assert found == []
