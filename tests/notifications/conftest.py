"""The demo portal served for real on 127.0.0.1 (so the emulator's webhooks reach it) and connected to the emulator."""
from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from tests.sync.conftest import SyncEnv, empty_env  # noqa: F401  (fixture reused)


@pytest.fixture
def served(app) -> str:
    """The app served on a free loopback port; ``DEMO_PUBLIC_URL`` points at it. Returns the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["DEMO_PUBLIC_URL"] = base
    yield base
    server.shutdown()
    thread.join(5)


@pytest.fixture
def notify_env(empty_env: SyncEnv, served: str) -> SyncEnv:  # noqa: F811
    """``acme`` connected, user sync automatic, portal reachable by the emulator."""
    empty_env.settings(mode="automatic")
    return empty_env
