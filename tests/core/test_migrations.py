"""The extension's migrations run beside the host's, with their own version table, and match the models."""
from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from flask_pbx365.migrate import VERSION_TABLE, alembic_config, downgrade_database, upgrade_database
from flask_pbx365.models import Base


def _tables(app) -> set[str]:
    from demo_app.models import db

    with app.app_context():
        return set(sa.inspect(db.engine).get_table_names())


def test_own_version_table_at_head_beside_the_hosts(app):
    from demo_app.models import db

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one() == head
        host_version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        assert host_version != head
    tables = _tables(app)
    assert {"pbx365_tenant", "pbx365_key_pair", "pbx365_sync_run"} <= tables
    assert all(not t.startswith("pbx365_") or t in {*Base.metadata.tables, VERSION_TABLE} for t in tables)


def test_models_and_migrations_agree(app):
    from demo_app.models import db

    def only_ours(obj, name, type_, reflected, compare_to):
        return type_ != "table" or (name.startswith("pbx365_") and name != VERSION_TABLE)

    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": only_ours, "compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_downgrade_and_upgrade_leave_host_tables_alone(app):
    before = _tables(app)
    host_tables = {t for t in before if not t.startswith("pbx365_")}
    downgrade_database("base", app=app)
    after = _tables(app)
    assert not any(t.startswith("pbx365_") and t != VERSION_TABLE for t in after)
    assert host_tables <= after
    upgrade_database(app=app)
    assert _tables(app) == before


def test_cli_db_upgrade_is_idempotent(app):
    result = app.test_cli_runner().invoke(args=["pbx365", "db", "upgrade"])
    assert result.exit_code == 0, result.output
