"""``flask pbx365 ...``: the commands of interfaces.md, thin shells over the same functions the tabs use."""
from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from .exceptions import PBX365Error
from .state import get_state

pbx365_cli = click.Group("pbx365", help="Microsoft 365 integration (flask_pbx365).")


def _fail(message: str, code: int = 1):
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
                _fail(str(exc))
        return group.command(name)(with_appcontext(wrapper))
    return decorate


def tenant_argument(fn):
    def check(ctx, param, value):
        keys = [t.key for t in get_state().host.list_tenants()]
        if value not in keys:
            raise click.BadParameter(f"unknown tenant {value!r}; tenants: {', '.join(keys) or 'none'}")
        return value
    return click.argument("tenant", callback=check)(fn)


def _emit(data, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


@command(pbx365_cli)
@tenant_argument
@click.option("--client-id", help="Application (client) ID from Entra.")
@click.option("--directory-id", help="Directory (tenant) ID from Entra, a GUID.")
@click.option("--cloud", type=click.Choice(["global", "usgov", "usgov-dod", "china", "custom"]))
@click.option("--login-url", help="Custom cloud only: the login (authority) base URL.")
@click.option("--graph-url", help="Custom cloud only: the Microsoft Graph base URL.")
@click.option("--ca-bundle", type=click.Path(dir_okay=False), help="Custom cloud only: CA bundle to trust.")
def configure(tenant, client_id, directory_id, cloud, login_url, graph_url, ca_bundle):
    """Set the Configure tab's fields."""
    from .settings import import_settings

    given = {"client_id": client_id, "directory_id": directory_id, "cloud": cloud, "login_url": login_url,
             "graph_url": graph_url, "ca_bundle": str(Path(ca_bundle).resolve()) if ca_bundle else None}
    values = {k: v for k, v in given.items() if v is not None}
    if cloud and cloud != "custom":
        values.update(login_url=None, graph_url=None, ca_bundle=None)
    conf = import_settings(tenant, {"configure": values})["configure"]
    click.echo(f"{tenant}: client {conf['client_id']}, directory {conf['directory_id']}, cloud {conf['cloud']}")


keys_cli = click.Group("keys", help="Key pairs whose certificate is uploaded to Entra.")
pbx365_cli.add_command(keys_cli)


@command(keys_cli, "generate")
@tenant_argument
@click.option("--out", type=click.Path(dir_okay=False), help="Write the certificate (public_key.pem) here.")
def keys_generate(tenant, out):
    """Generate a key pair; the first becomes active, later ones wait for `keys activate`."""
    from .keys import generate_key_pair

    info = generate_key_pair(tenant)
    if out:
        Path(out).write_bytes(info.certificate_pem)
    click.echo(f"sha1 {info.sha1}\nsha256 {info.sha256}\nnot_after {info.not_after.isoformat()}\n"
               f"active {str(info.active).lower()}" + (f"\ncertificate written to {out}" if out else ""))


@command(keys_cli, "show")
@tenant_argument
@click.option("--json", "as_json", is_flag=True)
def keys_show(tenant, as_json):
    """Thumbprints, expiry and which pair is active."""
    from .keys import list_key_pairs

    pairs = list_key_pairs(tenant)
    text = "\n".join(f"{'*' if k.active else ' '} sha1 {k.sha1} sha256 {k.sha256} not_after "
                     f"{k.not_after.isoformat()}" for k in pairs) or "no key pairs"
    _emit([k.as_json() for k in pairs], as_json, text)


@command(keys_cli, "activate")
@tenant_argument
@click.argument("sha256")
def keys_activate(tenant, sha256):
    """Make the pair with this SHA-256 thumbprint the one in use."""
    from .keys import activate_key_pair

    info = activate_key_pair(tenant, sha256)
    click.echo(f"active: {info.sha256}")


@command(keys_cli, "reencrypt")
def keys_reencrypt():
    """Re-encrypt every private key with the current PBX365_SECRET_KEY (after rotating it)."""
    from .keys import reencrypt_all

    click.echo(f"re-encrypted {reencrypt_all()} private key(s)")


@command(pbx365_cli, "test-connection")
@tenant_argument
@click.option("--json", "as_json", is_flag=True)
def test_connection_cmd(tenant, as_json):
    """Acquire a token and report granted and missing permissions per feature."""
    from .connection import test_connection

    result = test_connection(tenant)
    lines = [f"{'ok' if result['ok'] else 'FAILED'}" + (f": {result['error']}" if result.get("error") else "")]
    for name, feature in result["features"].items():
        lines.append(f"  {name}: {'ok' if feature['ok'] else 'missing ' + ', '.join(feature['missing'])}")
    _emit(result, as_json, "\n".join(lines))
    if not result["ok"]:
        if not as_json:
            click.echo(f"Error: {result.get('error') or 'user sync lacks its permission'}", err=True)
        sys.exit(1)


settings_cli = click.Group("settings", help="Every option of every tab, as JSON.")
pbx365_cli.add_command(settings_cli)


@command(settings_cli, "export")
@tenant_argument
@click.option("--out", type=click.Path(dir_okay=False))
def settings_export(tenant, out):
    from .settings import export_settings

    text = json.dumps(export_settings(tenant), indent=2)
    if out:
        Path(out).write_text(text + "\n")
    else:
        click.echo(text)


@command(settings_cli, "import")
@tenant_argument
@click.argument("file", type=click.File("r"))
def settings_import(tenant, file):
    from .exceptions import SettingsError
    from .settings import import_settings

    try:
        data = json.load(file)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{file.name} is not valid JSON: {exc}") from exc
    import_settings(tenant, data)
    click.echo(f"settings imported for {tenant}")


@command(pbx365_cli)
@tenant_argument
@click.option("--json", "as_json", is_flag=True)
def status(tenant, as_json):
    """Health, last and next runs, subscriptions, key expiry."""
    from .models import SyncRun
    from .scheduler import next_runs
    from .keys import active_key_pair
    from .tenants import find_config
    from .notifications import list_subscriptions

    config = find_config(tenant)
    key = active_key_pair(tenant)
    from .sync.runs import refresh_if_stale

    runs: list[SyncRun] = []
    for kind in ("users", "contacts", "presence"):  # the newest of each kind: presence runs every minute
        runs += get_state().db.session.scalars(
            sa.select(SyncRun).where(SyncRun.tenant == tenant, SyncRun.kind == kind)
            .order_by(SyncRun.created_at.desc()).limit(10))
    runs.sort(key=lambda r: r.created_at, reverse=True)
    for run in runs:
        refresh_if_stale(run)  # a run whose worker died shows as failed, not forever "running"
    data = {
        "connected": bool(config and config.client_id and config.directory_id and key),
        "key": {"sha256": key.sha256, "not_after": key.not_after.isoformat()} if key else None,
        "runs": [r.as_json() for r in runs],
        "next": next_runs(tenant),
        "subscriptions": list_subscriptions(tenant),
    }
    text = [f"connected: {str(data['connected']).lower()}",
            f"key: {key.sha256} until {key.not_after:%Y-%m-%d}" if key else "key: none"]
    text += [f"next {k}: {v or '-'}" for k, v in data["next"].items()]
    text += [f"run {r['run_id']} {r['kind']} {r['status']} {r['counts']}" for r in data["runs"]]
    _emit(data, as_json, "\n".join(text))


@command(pbx365_cli)
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
def worker(burst):
    """Run an RQ worker on the extension's queue inside the app's context."""
    from .jobs import make_worker

    app = current_app._get_current_object()
    make_worker(app).work(burst=burst, with_scheduler=False)


@command(pbx365_cli)
@click.option("--once", is_flag=True, help="One pass, then exit.")
def scheduler(once):
    """Dispatch scheduled syncs, certificate expiry notices and change-notification subscriptions."""
    from .scheduler import run_forever, run_once

    app = current_app._get_current_object()
    if once:
        run_once(app)
        return
    click.echo(f"pbx365 scheduler: every {app.config['PBX365_SCHEDULER_INTERVAL']}s", err=True)
    run_forever(app, float(app.config["PBX365_SCHEDULER_INTERVAL"]))


db_cli = click.Group("db", help="The extension's own database migrations.")
pbx365_cli.add_command(db_cli)


@command(db_cli, "upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision):
    """Apply the extension's migrations (version table pbx365_alembic_version)."""
    from .migrate import upgrade_database

    upgrade_database(revision, app=current_app._get_current_object())
    click.echo(f"flask_pbx365 database at {revision}")


from .cli_sync import sync_cli  # noqa: E402

pbx365_cli.add_command(sync_cli)
