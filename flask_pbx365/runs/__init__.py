"""The run machinery every feature with runs uses the same way.

- :mod:`.lifecycle`: :func:`request_run` (or join), :func:`confirm_run`, :func:`execute` (what a feature's job
  function calls with its engine), :class:`RunContext` (progress, items, counts), :func:`wait_for`;
- :mod:`.history`: :func:`get_run`, :func:`list_runs`, :func:`run_items`, :func:`status_json`, liveness;
- :mod:`.locks`: the per-tenant run lock and its heartbeat;
- :mod:`.queue`: the RQ queue and the worker that runs jobs inside the app's context;
- :mod:`.schedule`: when a schedule's slots fall.

Which job function a kind runs is the :attr:`flask_pbx365.feature.Feature.job` of the feature of that name.
"""
from __future__ import annotations

from .history import (
           ACTIVE,
           FINISHED,
           get_run,
           list_runs,
           prune_quiet_runs,
           refresh_if_stale,
           run_items,
           status_json,
)
from .lifecycle import RunContext, confirm_run, execute, request_run, wait_for

__all__ = ["ACTIVE", "FINISHED", "RunContext", "confirm_run", "execute", "get_run", "list_runs",
           "prune_quiet_runs", "refresh_if_stale", "request_run", "run_items", "status_json", "wait_for"]
