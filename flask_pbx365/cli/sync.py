"""``flask pbx365 sync <kind> TENANT`` (one command per feature with runs) and ``sync confirm TENANT [RUN_ID]``.

Exit codes: 0 done (or queued, without ``--wait``), 1 failed, 3 waiting for the admin's confirmation.
``--wait`` draws progress on stderr and prints the result (JSON with ``--json``) on stdout.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Iterable

import click
from rq import Worker

from ..feature import Feature
from ..models import SyncRun
from ..runs import confirm_run, request_run, status_json, wait_for
from ..runs.queue import get_queue
from .common import command, tenant_argument

EXIT_CODES = {"done": 0, "queued": 0, "running": 0, "failed": 1, "waiting_confirmation": 3}


class ProgressLine:
    """One redrawn line on stderr: ``[#####.....]  45% applying 450/1000``."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""
        self.last_at = 0.0

    def __call__(self, data: dict) -> None:
        progress = data.get("progress") or {}
        percent = progress.get("percent")
        phase = progress.get("phase") or data["status"]
        if progress.get("total"):
            where = f"{phase} {progress.get('done') or 0}/{progress['total']}"
        elif progress.get("pages"):
            where = f"{phase}: page {progress['pages']}, {progress.get('read') or 0} users"
        else:
            where = phase
        filled = (percent or 0) // 5
        bar = f"[{'#' * filled}{'.' * (20 - filled)}] {percent if percent is not None else '--':>3}% {where}"
        now = time.monotonic()
        if bar == self.last or (not self.tty and now - self.last_at < 2 and data["status"] in ("queued", "running")):
            return
        self.last, self.last_at = bar, now
        click.echo(("\r" + bar.ljust(70)) if self.tty else bar, err=True, nl=not self.tty)

    def close(self) -> None:
        if self.tty and self.last:
            click.echo("", err=True)


def _finish(data: dict, as_json: bool) -> None:
    out = {k: data[k] for k in ("run_id", "kind", "status", "counts", "message")} if as_json else data
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        counts = ", ".join(f"{k} {data['counts'][k]}" for k in SyncRun.COUNT_NAMES)
        click.echo(f"run {data['run_id']} {data['kind']} {data['status']}: {counts}")
        if data.get("message"):
            click.echo(data["message"])
    code = EXIT_CODES.get(data["status"], 1)
    if code:  # the documented one-line reason on stderr, with or without --json (stdout stays pure JSON)
        click.echo(f"Error: {data.get('message') or data['status']}".replace("\n", " "), err=True)
    sys.exit(code)


def _follow(tenant: str, run, wait: bool, as_json: bool) -> None:
    if not wait:
        _finish(status_json(run), as_json)
    _warn_without_worker()
    line = ProgressLine()
    try:
        data = wait_for(tenant, run.id, on_progress=line)
    finally:
        line.close()
    _finish(data, as_json)


def _warn_without_worker() -> None:
    queue = get_queue()
    if not Worker.all(queue=queue):
        click.echo(f"Warning: no RQ worker listens on the queue {queue.name!r}; start one with "
                   "`flask pbx365 worker` or the run stays queued.", err=True)


def _kind_command(group: click.Group, feature: Feature) -> None:
    kind = feature.name

    def run_kind(tenant: str, dry_run: bool, wait: bool, as_json: bool) -> None:
        _follow(tenant, request_run(tenant, kind, dry_run=dry_run), wait, as_json)

    run_kind.__doc__ = feature.cli_help or f"Run {feature.label} now."
    run_kind.__name__ = f"sync_{kind}"
    options = (click.option("--dry-run", is_flag=True, help="Show the plan without changing anything."),
               click.option("--wait", is_flag=True, help="Follow the run to its end with a progress bar."),
               click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."))
    fn = tenant_argument(run_kind)
    for option in reversed(options):
        fn = option(fn)
    command(group, feature.cli_name)(fn)


@tenant_argument
@click.argument("run_id", required=False)
@click.option("--kind", help="The kind of the held run (users, contacts...), instead of its RUN_ID.")
@click.option("--wait", is_flag=True, help="Follow the run to its end with a progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def confirm(tenant: str, run_id: str | None, kind: str | None, wait: bool, as_json: bool) -> None:
    """Confirm the run held by the mass-change guard: RUN_ID, or the held run of --kind, or the tenant's one
    held run (an error when runs of several kinds are held)."""
    _follow(tenant, confirm_run(tenant, run_id, kind.replace("-", "_") if kind else None), wait, as_json)


def build_sync_cli(features: Iterable[Feature]) -> click.Group:
    """The ``sync`` group: a command for each feature with runs and a ``cli_name``, then ``confirm``."""
    group = click.Group("sync", help="Run a sync now, or confirm a run held by the mass-change guard.")
    for feature in features:
        if feature.runs and feature.cli_name:
            _kind_command(group, feature)
    command(group, "confirm")(confirm)
    return group
