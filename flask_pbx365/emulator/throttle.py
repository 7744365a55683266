"""Entra (directory) throttling: a token bucket of resource units per application and tenant.

Microsoft's documented limits (Graph "throttling limits", identity and access): per app+tenant 3,500 / 5,000 /
8,000 resource units per 10 seconds for tenants under 50 users / 50-500 / over 500; costs: GET users 2,
groups/{id}/members 3, groups/{id}/transitiveMembers 5, other reads 1; ``$select`` -1, ``$top`` under 20 -1
(minimum 1). Writes use a separate bucket of 3,000 per 2.5 minutes. A tenant's limits are overridable through
``PATCH /_emulator/tenants/{tid}`` ``{"throttle": {"capacity": N, "windowSeconds": S, "writeCapacity": N,
"writeWindowSeconds": S, "enabled": bool}}`` so tests can reach them quickly.
"""
from __future__ import annotations

import math
import threading
import time

from flask import current_app, request

from .graph_common import graph_context, graph_error
from .store import Tenant


def default_capacity(tenant: Tenant) -> int:
    n = len(tenant.users)
    return 3500 if n < 50 else 5000 if n <= 500 else 8000


class Throttle:
    """Token buckets keyed by (tenant id, app id, read|write)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], list[float]] = {}

    def charge(self, tenant: Tenant, app_id: str, cost: int, *, write: bool = False) -> tuple[float, float]:
        """Take ``cost`` units; returns (seconds to wait — 0 when allowed, fraction of the limit in use)."""
        conf = tenant.throttle or {}
        if conf.get("enabled") is False:
            return 0.0, 0.0
        if write:
            capacity = float(conf.get("writeCapacity", 3000))
            window = float(conf.get("writeWindowSeconds", 150))
        else:
            capacity = float(conf.get("capacity", default_capacity(tenant)))
            window = float(conf.get("windowSeconds", 10))
        rate = capacity / window
        key = (tenant.id, app_id, "w" if write else "r")
        now = time.monotonic()
        with self._lock:
            level, last = self._buckets.get(key, [capacity, now])
            level = min(capacity, level + (now - last) * rate)
            if level < cost:
                self._buckets[key] = [level, now]
                return (cost - level) / rate, 1.0
            level -= cost
            self._buckets[key] = [level, now]
            return 0.0, 1 - level / capacity

    def reset(self, tenant_id: str) -> None:
        with self._lock:
            for key in [k for k in self._buckets if k[0] == tenant_id]:
                del self._buckets[key]


def read_cost(base: int) -> int:
    """Documented cost of the current read request: ``base`` adjusted for ``$select`` and small ``$top``."""
    cost = base
    if request.args.get("$select"):
        cost -= 1
    top = request.args.get("$top", "")
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(cost, 1)


def charge_directory(base_cost: int = 1, *, write: bool = False) -> None:
    """Charge the current Graph request to its app+tenant bucket; 429 ``TooManyRequests`` when empty.

    Adds ``x-ms-resource-unit`` (and ``x-ms-throttle-limit-percentage`` above 80 %) to the response.
    """
    ctx = graph_context()
    cost = 1 if write else read_cost(base_cost)
    wait, used = current_app.extensions["m365_throttle"].charge(ctx.tenant, ctx.app_id, cost, write=write)
    headers = {"x-ms-resource-unit": str(cost)}
    if used > 0.8:
        headers["x-ms-throttle-limit-percentage"] = f"{min(used, 1.8):.1f}"
    request.environ["m365.extra_headers"] = headers
    if wait > 0:
        kind = "Write" if write else "Read"
        raise graph_error(429, "TooManyRequests", "Please retry again later.",
                          inner={"code": "429", "message": "Please retry after", "status": "429"},
                          headers={**headers, "Retry-After": str(max(1, math.ceil(wait))),
                                   "x-ms-throttle-scope": f"Tenant_Application/{kind}/{ctx.app_id}/{ctx.tenant.id}",
                                   "x-ms-throttle-information": "ResourceUnitLimitExceeded"})
