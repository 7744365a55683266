"""``flask pbx365 ...``: the commands of interfaces.md, thin shells over the same functions the tabs use."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app

from ..connection import test_connection
from ..exceptions import SettingsError
from ..health import tenant_health
from ..keys import (
    activate_key_pair,
    active_key_pair,
    generate_key_pair,
    list_key_pairs,
    reencrypt_all,
)
from ..migrate import upgrade_database
from ..models import SyncRun
from ..notifications import list_subscriptions
from ..runs import refresh_if_stale
from ..runs.queue import make_worker
from ..scheduler import next_runs, run_forever, run_once
from ..settings import export_settings, import_settings
from ..state import get_state
from ..tenants import find_config
from .common import command, emit, tenant_argument

#: The commands every app gets; :func:`flask_pbx365.cli.build_cli` adds the ``sync`` group of its features.
core_cli = click.Group("pbx365", help="Microsoft 365 integration (flask_pbx365).")
@command(core_cli)
@tenant_argument
@click.option("--client-id", help="Application (client) ID from Entra.")
@click.option("--directory-id", help="Directory (tenant) ID from Entra, a GUID.")
@click.option("--cloud", type=click.Choice(["global", "usgov", "usgov-dod", "china", "custom"]))
@click.option("--login-url", help="Custom cloud only: the login (authority) base URL.")
@click.option("--graph-url", help="Custom cloud only: the Microsoft Graph base URL.")
@click.option("--ca-bundle", type=click.Path(dir_okay=False), help="Custom cloud only: CA bundle to trust.")
def configure(tenant, client_id, directory_id, cloud, login_url, graph_url, ca_bundle):
    """Set the Configure tab's fields."""

    given = {"client_id": client_id, "directory_id": directory_id, "cloud": cloud, "login_url": login_url,
             "graph_url": graph_url, "ca_bundle": str(Path(ca_bundle).resolve()) if ca_bundle else None}
    values = {k: v for k, v in given.items() if v is not None}
    if cloud and cloud != "custom":
        values.update(login_url=None, graph_url=None, ca_bundle=None)
    conf = import_settings(tenant, {"configure": values})["configure"]
    click.echo(f"{tenant}: client {conf['client_id']}, directory {conf['directory_id']}, cloud {conf['cloud']}")


keys_cli = click.Group("keys", help="Key pairs whose certificate is uploaded to Entra.")
core_cli.add_command(keys_cli)


@command(keys_cli, "generate")
@tenant_argument
@click.option("--out", type=click.Path(dir_okay=False), help="Write the certificate (public_key.pem) here.")
def keys_generate(tenant, out):
    """Generate a key pair; the first becomes active, later ones wait for `keys activate`."""

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

    pairs = list_key_pairs(tenant)
    text = "\n".join(f"{'*' if k.active else ' '} sha1 {k.sha1} sha256 {k.sha256} not_after "
                     f"{k.not_after.isoformat()}" for k in pairs) or "no key pairs"
    emit([k.as_json() for k in pairs], as_json, text)


@command(keys_cli, "activate")
@tenant_argument
@click.argument("sha256")
def keys_activate(tenant, sha256):
    """Make the pair with this SHA-256 thumbprint the one in use."""

    info = activate_key_pair(tenant, sha256)
    click.echo(f"active: {info.sha256}")


@command(keys_cli, "reencrypt")
def keys_reencrypt():
    """Re-encrypt every private key with the current PBX365_SECRET_KEY (after rotating it)."""

    click.echo(f"re-encrypted {reencrypt_all()} private key(s)")


@command(core_cli, "test-connection")
@tenant_argument
@click.option("--json", "as_json", is_flag=True)
def test_connection_cmd(tenant, as_json):
    """Acquire a token and report granted and missing permissions per feature."""

    result = test_connection(tenant)
    lines = [f"{'ok' if result['ok'] else 'FAILED'}" + (f": {result['error']}" if result.get("error") else "")]
    for name, feature in result["features"].items():
        lines.append(f"  {name}: {'ok' if feature['ok'] else 'missing ' + ', '.join(feature['missing'])}")
    emit(result, as_json, "\n".join(lines))
    if not result["ok"]:
        if not as_json:
            click.echo(f"Error: {result.get('error') or 'user sync lacks its permission'}", err=True)
        sys.exit(1)


settings_cli = click.Group("settings", help="Every option of every tab, as JSON.")
core_cli.add_command(settings_cli)


@command(settings_cli, "export")
@tenant_argument
@click.option("--out", type=click.Path(dir_okay=False))
def settings_export(tenant, out):
    """Write every option of every tab as JSON (stdout, or --out FILE)."""

    text = json.dumps(export_settings(tenant), indent=2)
    if out:
        Path(out).write_text(text + "\n")
    else:
        click.echo(text)


@command(settings_cli, "import")
@tenant_argument
@click.argument("file", type=click.File("r"))
def settings_import(tenant, file):
    """Read every option from a JSON file; absent keys keep their values, unknown ones are refused."""
    try:
        data = json.load(file)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{file.name} is not valid JSON: {exc}") from exc
    import_settings(tenant, data)
    click.echo(f"settings imported for {tenant}")


@command(core_cli)
@tenant_argument
@click.option("--json", "as_json", is_flag=True)
def status(tenant, as_json):
    """Health, last and next runs, subscriptions, key expiry."""
    config = find_config(tenant)
    key = active_key_pair(tenant)
    runs: list[SyncRun] = []
    for kind in (f.name for f in get_state().run_features):  # the newest of each kind: presence runs every minute
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
        "health": tenant_health(tenant),
    }
    text = [f"connected: {str(data['connected']).lower()}",
            f"key: {key.sha256} until {key.not_after:%Y-%m-%d}" if key else "key: none"]
    text += [f"next {k}: {v or '-'}" for k, v in data["next"].items()]
    text += [f"run {r['run_id']} {r['kind']} {r['status']} {r['counts']}" for r in data["runs"]]
    text += [f"health {c['state']:<7} {c['label']}: {c['summary']}" for c in data["health"]["checks"]]
    emit(data, as_json, "\n".join(text))


@command(core_cli)
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
def worker(burst):
    """Run an RQ worker on the extension's queue inside the app's context."""

    app = current_app._get_current_object()
    make_worker(app).work(burst=burst, with_scheduler=False)


@command(core_cli)
@click.option("--once", is_flag=True, help="One pass, then exit.")
def scheduler(once):
    """Dispatch scheduled syncs, certificate expiry notices and change-notification subscriptions."""

    app = current_app._get_current_object()
    if once:
        run_once(app)
        return
    click.echo(f"pbx365 scheduler: every {app.config['PBX365_SCHEDULER_INTERVAL']}s", err=True)
    run_forever(app, float(app.config["PBX365_SCHEDULER_INTERVAL"]))


db_cli = click.Group("db", help="The extension's own database migrations.")
core_cli.add_command(db_cli)


@command(db_cli, "upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision):
    """Apply the extension's migrations (version table pbx365_alembic_version)."""

    upgrade_database(revision, app=current_app._get_current_object())
    click.echo(f"flask_pbx365 database at {revision}")

