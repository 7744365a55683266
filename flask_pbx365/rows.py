"""Many rows of one table in one statement, at the least cost per row the database driver allows.

The sync engines write thousands of rows per batch (links, run items; a host's users). SQLAlchemy Core's
executemany builds and converts a parameter dictionary per row in Python, which costs several times the
database's own insert. :func:`insert_rows` hands pysqlite plain tuples instead and psycopg a ``COPY`` of them;
every other driver gets Core's executemany unchanged. Hosts may use it for their own tables too (see
docs/host-integration.md).

A first sync grows a table from nothing to 100,000 rows in one run, faster than PostgreSQL's autovacuum
re-analyses it, and the batches look rows up by ``IN (...)`` lists. With statistics from when the table was
small, the planner keeps choosing a scan of the whole tenant (and prepared statements keep that plan), so each
lookup costs O(rows so far) and the run grows quadratically (100k users on the bench: 75 s instead of 24 s).
:func:`refresh_statistics` re-analyses a table each time it has doubled since its last analysis.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, scoped_session


def _connection(target: Session | scoped_session | Connection, table: sa.Table) -> Connection:
    if isinstance(target, Connection):
        return target
    return target.connection(bind_arguments={"clause": sa.insert(table)})  # the table's engine, with several binds


def _dialect(target: Session | scoped_session | Connection, table: sa.Table) -> sa.engine.Dialect:
    """The dialect ``table`` is written with, without checking a connection out or beginning a transaction."""
    if isinstance(target, Connection):
        return target.dialect
    return target.get_bind(clause=sa.insert(table)).dialect


def _direct(dialect: sa.engine.Dialect) -> bool:
    return dialect.name == "sqlite" and dialect.driver == "pysqlite" and dialect.paramstyle == "qmark"


def _default(column: sa.Column) -> Callable[[], Any] | None:
    """A column's Python-side INSERT default as a zero-argument function, or None when it has none we can
    compute without a statement context (such a table takes Core's path)."""
    default = column.default
    if default is None:
        return None
    if getattr(default, "is_scalar", False):
        value = default.arg
        return lambda: value
    if getattr(default, "is_callable", False):
        fn = default.arg  # SQLAlchemy wraps a zero-argument callable as fn(context)
        return lambda: fn(None)
    raise LookupError(column.name)


class _Converter:
    """Turns one column's Python values into what the driver stores (the column type's bind processor), each
    distinct value once: within a batch timestamps and states repeat."""

    __slots__ = ("process", "seen")

    def __init__(self, process: Callable[[Any], Any]):
        self.process = process
        self.seen: dict[Any, Any] = {}

    def __call__(self, value: Any) -> Any:
        try:
            return self.seen[value]
        except KeyError:
            out = self.seen[value] = self.process(value)
            return out
        except TypeError:  # unhashable (JSON)
            return self.process(value)


def insert_rows(target: Session | scoped_session | Connection, table: sa.Table,
                rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ``rows`` into ``table`` in one statement, inside ``target``'s transaction.

    Every row has the same keys (column names). A column left out gets its default, as with ``sa.insert``:
    a scalar or zero-argument Python default (computed once per call: one timestamp for the whole batch), or
    the server's default. Returns nothing: the rows' generated keys are not read back. A database error raises
    SQLAlchemy's exception for it (``IntegrityError`` for a duplicate) and the statement stores nothing.

    pysqlite gets an executemany of plain tuples, psycopg (PostgreSQL) a ``COPY ... FROM STDIN`` of the same
    tuples (a seventh of executemany's CPU); SQLAlchemy's ``before_cursor_execute`` events do not see those
    two. Any other driver, or a table with a default that needs a statement, gets Core's executemany.
    """
    if not rows:
        return
    conn = _connection(target, table)
    dialect = conn.dialect
    direct = _direct(dialect)
    plain = _plain_rows(dialect, table, rows) if direct or _copies(dialect) else None
    if plain is None:
        conn.execute(sa.insert(table), list(rows))
        return
    columns, params = plain
    preparer = dialect.identifier_preparer
    quoted = ", ".join(preparer.quote(table.c[n].name) for n in columns)
    if direct:
        conn.exec_driver_sql(f"INSERT INTO {preparer.format_table(table)} ({quoted}) "
                             f"VALUES ({', '.join('?' for _ in columns)})", params)
        return
    sql = f"COPY {preparer.format_table(table)} ({quoted}) FROM STDIN"
    dbapi = dialect.loaded_dbapi
    try:
        with conn.connection.driver_connection.cursor() as cursor, cursor.copy(sql) as copy:
            for values in params:
                copy.write_row(values)
    except dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, None, exc, dbapi.Error, dialect=dialect) from exc


def _copies(dialect: sa.engine.Dialect) -> bool:
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def _plain_rows(dialect: sa.engine.Dialect, table: sa.Table, rows: Sequence[Mapping[str, Any]]
                ) -> tuple[list[str], list[tuple]] | None:
    """The column keys and one tuple of driver values per row, the Python defaults of the columns left out
    appended; None when a left-out column's default needs a statement (a sequence, a SQL expression)."""
    names = list(rows[0])
    try:
        defaults = {c.key: fn for c in table.columns if c.key not in names and (fn := _default(c)) is not None}
    except LookupError:
        return None
    fixed = {name: fn() for name, fn in defaults.items()}
    columns = [*names, *fixed]
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
    tail = tuple(p(fixed[n]) if p else fixed[n] for n, p in zip(columns[len(names):], processors[len(names):]))
    # JSON values are dicts and lists (unhashable): converted each, without a memo that would only miss.
    convert = [(i, p if isinstance(table.c[name].type, sa.JSON) else _Converter(p))
               for i, (name, p) in enumerate(zip(names, processors)) if p is not None]
    pick = operator.itemgetter(*names)
    if len(names) == 1:
        params = [(pick(row),) + tail for row in rows]
    else:
        params = [pick(row) + tail for row in rows]
    if convert:
        for n, values in enumerate(params):
            values = list(values)
            for i, conv in convert:
                values[i] = conv(values[i])
            params[n] = tuple(values)
    return columns, params


def in_keys(target: Session | scoped_session | Connection, column: Any, values: Sequence[Any]
            ) -> sa.ColumnElement[bool]:
    """``column IN values`` for a batch lookup (``column`` a table's column or a mapped attribute), as the
    database plans and parses it cheapest.

    On PostgreSQL ``column = ANY(:values)``, one array parameter: the statement text is the same for any number of
    keys, so psycopg and the server parse and plan it once, where an ``IN`` of 500 parameters is rendered and
    parsed again on every call (SQLAlchemy renders each key with a cast; psycopg caches no query that long).
    Elsewhere ``column.in_(values)``: keep the lists under the database's parameter limit (SQLite: 999)."""
    expression = column.expression  # the Column of a mapped attribute
    if _dialect(target, expression.table).name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(expression.type)))
    return column.in_(values)


#: A table smaller than this (in pages of 8 KB) is never analysed here: any plan is fast on it.
STATISTICS_MIN_PAGES = 8


def refresh_statistics(target: Session | scoped_session | Connection, table: sa.Table, *,
                       growth: float = 2.0) -> bool:
    """On PostgreSQL, ``ANALYZE`` ``table`` when it has grown ``growth`` times since its statistics were taken
    (its size on disk, which counts this transaction's own rows, against ``pg_class.relpages``); a no-op on other
    databases. Returns whether it analysed.

    Call it once per batch of a bulk load, in the batch's transaction, after the batch's inserts: the new
    statistics (and the replanning of cached plans they cause) commit with the batch. The check is one catalog
    query; over a load from empty to P pages it analyses about log2(P / 8) times (9 for 100k users). Without
    the right to analyse the table (not its owner), PostgreSQL only logs a warning and nothing changes.
    """
    if _dialect(target, table).name != "postgresql":
        return False
    conn = _connection(target, table)
    name = conn.dialect.identifier_preparer.format_table(table)
    row = conn.execute(sa.text(
        "SELECT pg_relation_size(c.oid) / current_setting('block_size')::int, c.relpages "
        "FROM pg_class c WHERE c.oid = to_regclass(:name)"), {"name": name}).first()
    if row is None or row[0] <= growth * max(row[1], STATISTICS_MIN_PAGES):
        return False
    conn.exec_driver_sql(f"ANALYZE {name}")
    return True
