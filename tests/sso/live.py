"""The demo portal served for real (a werkzeug server thread), for nginx and browser tests."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterator

from werkzeug.serving import make_server

CALLBACK = "/integrations/microsoft365/oauth2/callback"


@dataclass
class LivePortal:
    url: str
    server: Any


def serve(app) -> Iterator[LivePortal]:
    """Serve ``app`` on a free loopback port until the generator is closed."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LivePortal(f"http://127.0.0.1:{server.socket.getsockname()[1]}", server)
    finally:
        server.shutdown()
        thread.join(10)


def use_public_urls(sso, portal: str, sbc: str | None) -> None:
    """Point the portal's public URLs at the live servers and register their redirect URIs in Entra."""
    sso.app.config.update(DEMO_PUBLIC_URL=portal, DEMO_SBC_URL=sbc or "")
    sso.emulator.patch_application(sso.tid, sso.app_id,
                                   redirectUris=[portal + CALLBACK] + ([sbc + CALLBACK] if sbc else []))
