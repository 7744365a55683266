"""What every ``flask pbx365`` command shares: the app context, one-line errors, the TENANT argument."""
from __future__ import annotations

import json
import sys
from functools import wraps

import click
from flask.cli import with_appcontext

from ..exceptions import PBX365Error
from ..state import get_state


def fail(message: str, code: int = 1):
    """End the command with ``Error: message`` on one line of stderr."""
    click.echo(f"Error: {message}".replace("\n", " "), err=True)
    sys.exit(code)


def command(group: click.Group, name: str | None = None):
    """A CLI command inside the app context whose domain errors end as one line on stderr, exit 1."""
    def decorate(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except PBX365Error as exc:
                fail(str(exc))
        return group.command(name)(with_appcontext(wrapper))
    return decorate


def tenant_argument(fn):
    """The TENANT argument, checked against the host's tenants."""
    def check(ctx, param, value):
        keys = [t.key for t in get_state().host.list_tenants()]
        if value not in keys:
            raise click.BadParameter(f"unknown tenant {value!r}; tenants: {', '.join(keys) or 'none'}")
        return value
    return click.argument("tenant", callback=check)(fn)


def emit(data, as_json: bool, text: str) -> None:
    """Print ``data`` as JSON with ``--json``, else ``text``."""
    click.echo(json.dumps(data, indent=2) if as_json else text)
