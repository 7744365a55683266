"""``python -m flask_pbx365.emulator --host 127.0.0.1 --port 8443 --state-dir DIR [--tenant-file FILE]...``

Serves the emulator over HTTPS with a certificate from its own CA (``DIR/ca.pem``) and prints exactly one line
``READY https://HOST:PORT ca=DIR/ca.pem`` once it accepts connections (``--port 0`` picks a free port).
"""
from __future__ import annotations

import argparse
import json
import logging
import socket
import ssl
import sys
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flask_pbx365.emulator",
                                     description="Microsoft 365 (Entra ID + Graph) emulator over HTTPS.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--state-dir", required=True, help="holds the CA (ca.pem) and the token secret")
    parser.add_argument("--tenant-file", action="append", default=[], help="a tenant fixture (JSON); repeatable")
    parser.add_argument("--base-url", help="public base URL if not https://HOST:PORT")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)

    from werkzeug.serving import make_server

    from .app import create_app
    from .fixtures import FixtureError, load_fixture
    from .keys import ensure_tls

    state = Path(args.state_dir).resolve()
    cert, key, ca = ensure_tls(state, [args.host])
    ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ssl_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ssl_ctx.load_cert_chain(cert, key)
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # Bind first: with --port 0 the real port is only known afterwards, and it goes into every URL we mint.
    server = make_server(args.host, args.port, None, threaded=True, ssl_context=ssl_ctx)
    # Accepted sockets inherit this: without it a response's header and body segments wait for delayed ACKs.
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    port = server.socket.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    base = (args.base_url or f"https://{host}:{port}").rstrip("/")
    app = create_app(state, base_url=base)
    server.app = app
    for file in args.tenant_file:
        try:
            load_fixture(app.extensions["m365_store"], json.loads(Path(file).read_text()))
        except (OSError, ValueError, FixtureError) as exc:
            print(f"error: tenant file {file}: {exc}", file=sys.stderr)
            return 2
    # Parse the Graph schema in the background: the first $select would otherwise wait for it.
    threading.Thread(target=_warm_schema, daemon=True).start()
    print(f"READY {base} ca={ca}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _warm_schema() -> None:
    from . import csdl

    try:
        csdl.schema()
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
