"""App factory for a real ``flask --app tests.sync.worker_app:create pbx365 worker`` subprocess.

The demo portal reads ``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY`` and ``PBX365_SECRET_KEY`` from the
environment itself; the sync tuning knobs come from ``PBX365_SYNC_BATCH_SIZE`` and ``PBX365_SYNC_LOCK_TTL``.
"""
from __future__ import annotations

import os


def create():
    from demo_app import create_app

    config = {"TESTING": True, "PBX365_MAX_RETRIES": 1, "PBX365_HTTP_TIMEOUT": 60}
    for name in ("PBX365_SYNC_BATCH_SIZE", "PBX365_SYNC_LOCK_TTL"):
        if os.environ.get(name):
            config[name] = int(os.environ[name])
    return create_app(config)
