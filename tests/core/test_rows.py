"""insert_rows stores exactly what Core's executemany stores, defaults included, on the pass's database."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from flask_pbx365.models import UTCDateTime, utcnow
from flask_pbx365.rows import insert_rows


def _table(meta: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(name, meta,
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(50), nullable=False),
                    sa.Column("when", UTCDateTime()),  # a TypeDecorator with a dialect processor, and a keyword
                    sa.Column("flag", sa.Boolean, default=True),
                    sa.Column("data", sa.JSON),
                    sa.Column("blob", sa.LargeBinary),
                    sa.Column("state", sa.String(16), default="active"),
                    sa.Column("created_at", UTCDateTime(), default=utcnow),
                    sa.Column("kind", sa.String(8), server_default="x"))


@pytest.fixture
def engine(database_url):
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


def _stored(engine, table) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]


def test_the_rows_match_cores_insert_value_for_value(engine):
    meta = sa.MetaData()
    ours, core = _table(meta, "rows_ours"), _table(meta, "rows_core")
    meta.create_all(engine)
    when = datetime(2026, 12, 7, 10, 30, 0, 123456, tzinfo=timezone.utc)
    rows = [{"id": i, "name": f"n{i}", "when": when if i % 2 else None, "flag": i % 3 == 0,
             "data": {"i": i, "tags": ["a", i]} if i % 4 else None, "blob": bytes([i]) * 3}
            for i in range(1, 41)]
    with Session(engine) as session:
        insert_rows(session, ours, rows)
        session.execute(sa.insert(core), rows)
        session.commit()
    mine, theirs = _stored(engine, ours), _stored(engine, core)
    assert len(mine) == 40
    # created_at is "now" on both sides; everything else is identical, the defaults included.
    assert [r[:7] + r[8:] for r in mine] == [r[:7] + r[8:] for r in theirs]
    assert mine[0][6] == "active" and mine[0][8] == "x" and mine[0][2] == when and mine[1][2] is None
    assert all(abs((a[7] - b[7]).total_seconds()) < 60 for a, b in zip(mine, theirs))


def test_the_rows_belong_to_the_callers_transaction(engine):
    meta = sa.MetaData()
    table = _table(meta, "rows_tx")
    meta.create_all(engine)
    with Session(engine) as session:
        insert_rows(session, table, [{"name": "kept"}])
        session.commit()
        insert_rows(session, table, [{"name": "undone"}, {"name": "undone too"}])
        session.rollback()
    assert [r[1] for r in _stored(engine, table)] == ["kept"]


def test_a_bad_row_fails_the_statement_with_the_databases_error(engine):
    meta = sa.MetaData()
    table = _table(meta, "rows_bad")
    meta.create_all(engine)
    with Session(engine) as session:
        with pytest.raises(sa.exc.IntegrityError):
            insert_rows(session, table, [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}])
        session.rollback()
    assert _stored(engine, table) == []


def _people(meta: sa.MetaData) -> sa.Table:
    return sa.Table("rows_people", meta,
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("tenant_id", sa.Integer, nullable=False, index=True),
                    sa.Column("extension", sa.String(32), nullable=False),
                    sa.Column("pad", sa.String(300)),
                    sa.UniqueConstraint("tenant_id", "extension"))


def _estimated_rows(session: Session, table: sa.Table) -> int:
    """The planner's estimate of tenant 1's rows (PostgreSQL's EXPLAIN: "... rows=N width=...")."""
    plan = session.execute(sa.text(f"EXPLAIN SELECT id FROM {table.name} WHERE tenant_id = 1")).scalars().first()
    return int(plan.split(" rows=")[1].split()[0])


def test_a_bulk_load_keeps_the_planners_statistics_current(engine):
    """A tenant loaded from nothing in batches of 500 (as a first sync does): with the statistics of the portal
    before it the planner counts on one row of it, and keeps choosing plans that visit the whole tenant for
    every lookup; refreshed as the table doubles, its estimate follows the table."""
    from flask_pbx365.rows import refresh_statistics

    meta = sa.MetaData()
    table = _people(meta)
    meta.create_all(engine)
    postgres = engine.dialect.name == "postgresql"
    analysed = []
    with Session(engine) as session:
        insert_rows(session, table, [{"tenant_id": 2, "extension": "100", "pad": "x"}])
        session.commit()
        if postgres:
            session.execute(sa.text("ANALYZE rows_people"))  # the statistics of a portal without this tenant
            session.commit()
        for batch in range(40):
            insert_rows(session, table, [{"tenant_id": 1, "extension": str(1000 + batch * 500 + i), "pad": "p" * 300}
                                         for i in range(500)])
            analysed.append(refresh_statistics(session, table))
            session.commit()
        assert refresh_statistics(session, table) is False  # nothing grew since the last analysis
        if not postgres:
            assert not any(analysed)  # SQLite keeps no such statistics
            return
        # Doubling: a handful of analyses over 40 batches, not one per batch.
        assert 3 <= sum(analysed) <= 8, analysed
        assert _estimated_rows(session, table) >= 10_000  # 20,000 rows; stale statistics say 1


def test_a_key_lookup_finds_what_in_finds_with_one_statement_for_any_number_of_keys(engine):
    from flask_pbx365.rows import in_keys

    meta = sa.MetaData()
    table = _people(meta)
    meta.create_all(engine)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: statements.append(statement))
    with Session(engine) as session:
        insert_rows(session, table, [{"tenant_id": 1 + i % 2, "extension": str(100 + i)} for i in range(300)])
        for keys in (["100", "102", "nope"], [str(n) for n in range(150, 420)], []):
            statements.clear()
            found = session.scalars(sa.select(table.c.extension).where(
                table.c.tenant_id == 1, in_keys(session, table.c.extension, keys))).all()
            assert sorted(found) == sorted(session.scalars(sa.select(table.c.extension).where(
                table.c.tenant_id == 1, table.c.extension.in_(keys))).all())
            assert len(found) == len([k for k in keys if k.isdigit() and int(k) < 400 and int(k) % 2 == 0])
            if engine.dialect.name == "postgresql":
                assert "ANY" in statements[0] and statements[0].count("%(") == 2  # the tenant and one array
        ids = session.scalars(sa.select(table.c.id).where(in_keys(session, table.c.id, [1, 2, 3]))).all()
        assert sorted(ids) == [1, 2, 3]
