"""The per-tenant run lock: one run of a kind executes per tenant at a time, kept alive by a heartbeat.

The job holds ``pbx365:sync:{tenant}:{kind}:lock`` (value: the run id) and a heartbeat thread keeps extending
it, so a killed worker's lock expires after ``PBX365_SYNC_LOCK_TTL`` seconds.
"""
from __future__ import annotations

import logging
import threading
import time

from flask import current_app

from ..exceptions import ConfigurationError
from ..models import SyncRun
from ..state import get_state

log = logging.getLogger("flask_pbx365.runs")


def lock_ttl() -> int:
    return int(current_app.config["PBX365_SYNC_LOCK_TTL"])


def lock_key(tenant: str, kind: str) -> str:
    return f"pbx365:sync:{tenant}:{kind}:lock"


class Heartbeat(threading.Thread):
    """Keeps the run's lock alive while the engine works (a killed process stops extending it)."""

    def __init__(self, redis, key: str, owner: str, ttl: int):
        super().__init__(daemon=True, name=f"pbx365-heartbeat-{owner[:8]}")
        self.redis, self.key, self.owner, self.ttl = redis, key, owner, ttl
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(max(self.ttl / 3, 0.2)):
            try:
                if (self.redis.get(self.key) or b"").decode() != self.owner:
                    return
                self.redis.pexpire(self.key, int(self.ttl * 1000))
            except Exception:  # Redis hiccup: the next beat tries again
                log.warning("sync lock heartbeat failed", exc_info=True)


def acquire(run: SyncRun) -> Heartbeat:
    """Wait until this run holds its tenant's lock (another run of the kind may still be executing)."""
    redis, key, ttl = get_state().redis(), lock_key(run.tenant, run.kind), lock_ttl()
    deadline = time.monotonic() + int(current_app.config["PBX365_JOB_TIMEOUT"])
    while not redis.set(key, run.id, nx=True, px=ttl * 1000):
        if (redis.get(key) or b"").decode() == run.id:
            break
        if time.monotonic() > deadline:
            raise ConfigurationError("Another sync of this tenant kept running for longer than the job timeout.")
        time.sleep(0.5)
    beat = Heartbeat(redis, key, run.id, ttl)
    beat.start()
    return beat


def release(run: SyncRun, beat: Heartbeat) -> None:
    beat.stopped.set()
    redis, key = get_state().redis(), lock_key(run.tenant, run.kind)
    if (redis.get(key) or b"").decode() == run.id:
        redis.delete(key)
