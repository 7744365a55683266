"""``flask --app demo_app demo init|connect``."""
from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("demo")
def demo_cli() -> None:
    """Demo portal: database and emulator set-up."""


@demo_cli.command("init")
@click.option("--connect/--no-connect", default=True, show_default=True,
              help="Connect tenant acme to the emulator when it answers.")
@with_appcontext
def init_command(connect: bool) -> None:
    """Migrate the database (the demo's and the extension's tables), seed the demo data, connect acme."""
    from flask_migrate import upgrade

    from . import MIGRATIONS_DIR
    from .seed import seed

    upgrade(directory=MIGRATIONS_DIR)
    click.echo("demo database migrated")
    try:
        from flask_pbx365 import upgrade_database
    except ImportError:  # the extension's migrations are being written alongside the demo
        click.echo("flask_pbx365.upgrade_database is not available yet; the extension's tables were not migrated")
    else:
        upgrade_database()
        click.echo("flask_pbx365 tables migrated")
    for line in seed():
        click.echo(line)
    if connect:
        _connect()


@demo_cli.command("connect")
@with_appcontext
def connect_command() -> None:
    """Connect tenant acme to the Microsoft 365 emulator (fixture, key pair, app registration, Configure tab)."""
    _connect()


def _connect() -> None:
    from .connect import connect_acme

    for line in connect_acme():
        click.echo(line)
