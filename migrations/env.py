"""Alembic environment of flask_pbx365's own migrations (version table ``pbx365_alembic_version``).

Run through :func:`flask_pbx365.upgrade_database`, which hands over a connection; or, inside a Flask app context,
with Flask-Migrate: ``flask db -d path/to/flask_pbx365/migrations upgrade``.
"""
from alembic import context

from flask_pbx365.migrate import VERSION_TABLE
from flask_pbx365.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    if type_ == "table":
        return name.startswith("pbx365_") and name != VERSION_TABLE
    return True


def run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, version_table=VERSION_TABLE,
                      include_object=include_object, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    from flask import current_app

    with current_app.extensions["pbx365"].db.engine.begin() as conn:
        run_migrations(conn)
