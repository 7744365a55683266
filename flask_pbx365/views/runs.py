"""The run views the sync tabs share: start a run, its live progress (JSON), its per-item details."""
from __future__ import annotations

from flask import abort, flash, jsonify, redirect, request, url_for

from ..exceptions import PBX365Error
from ..models import SyncRun
from ..runs import get_run, request_run, run_items, status_json
from .admin import current_tenant, render_tab

#: Items per page of a run's details.
PAGE = 100


def start_run(kind: str, tab_endpoint: str, started: str):
    """``POST .../run``: request a run (a dry run with ``dry_run=1``) and go back to the tab's progress bar."""
    dry_run = request.form.get("dry_run") in ("1", "on", "true")
    try:
        run = request_run(current_tenant(), kind, dry_run=dry_run, trigger="manual")
    except PBX365Error as exc:
        flash(str(exc), "error")
        return redirect(url_for(tab_endpoint))
    flash(("Dry run started: nothing will be changed." if dry_run else started) + " Progress is shown below.",
          "success")
    return redirect(url_for(tab_endpoint, run=run.id) + "#progress")


def run_or_404(kind: str, run_id: str) -> SyncRun:
    """The current tenant's run of ``kind``; 404 for another tenant's run or another kind."""
    run = get_run(current_tenant(), run_id)
    if run is None or run.kind != kind:
        abort(404)
    return run


def progress(kind: str, run_id: str):
    return jsonify(status_json(run_or_404(kind, run_id)))


def run_detail(kind: str, run_id: str, template: str, actions: tuple[str, ...]):
    """A run's items, filtered by ``action`` and searched by ``q``, paged; ``format=json`` for scripts."""
    run = run_or_404(kind, run_id)
    action = request.args.get("action") or None
    if action not in (None, *actions):
        abort(400, description=f"Unknown action filter {action!r}.")
    query = request.args.get("q", "").strip()
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    items, total = run_items(run.id, action=action, search=query, limit=PAGE, offset=(page - 1) * PAGE)
    if request.args.get("format") == "json":
        return jsonify({"run": status_json(run), "total": total, "items": [i.as_json() for i in items]})
    return render_tab(template, detail=status_json(run), items=items, total=total, page=page,
                      pages=max(1, -(-total // PAGE)), action=action, query=query, actions=actions)
