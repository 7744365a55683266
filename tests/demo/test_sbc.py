"""The nginx SBC in front of the portal: TLS, and the X-Forwarded-* headers the portal builds URLs from."""
from __future__ import annotations

import threading

import pytest
import requests
from flask import jsonify, request
from werkzeug.serving import make_server


@pytest.fixture
def portal(app):
    """The demo portal served over HTTP on a free loopback port, with a route that echoes what it received."""
    @app.get("/_probe/headers")
    def headers():
        return jsonify(headers=dict(request.headers), remote_addr=request.remote_addr, url=request.url)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture
def sbc(nginx_path, portal, tmp_path):
    from demo_app.sbc.start import start, stop
    from tests.fixtures_services import free_port

    running = start(portal, free_port(), directory=tmp_path / "sbc")
    yield running
    stop(running)


def test_sbc_forwards_to_the_portal_with_forwarded_headers(sbc):
    response = requests.get(f"https://localhost:{sbc.port}/_probe/headers", verify=str(sbc.certificate), timeout=10)
    assert response.status_code == 200
    seen = response.json()
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == "localhost"
    assert headers["x-forwarded-port"] == str(sbc.port)
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["host"] == f"localhost:{sbc.port}"
    assert seen["remote_addr"] == "127.0.0.1"  # the portal sees the proxy; trusting its headers is its choice


def test_portal_pages_work_through_the_sbc(sbc):
    ca = str(sbc.certificate)
    page = requests.get(f"https://localhost:{sbc.port}/login?tenant=acme", verify=ca, timeout=10)
    assert page.status_code == 200 and "Acme Corp" in page.text
    api = requests.get(f"https://127.0.0.1:{sbc.port}/api/tenants", verify=ca, timeout=10,
                       headers={"Authorization": "Bearer test-demo-api-token"})
    assert api.json() == [{"slug": "acme", "name": "Acme Corp"}, {"slug": "globex", "name": "Globex"}]


def test_sbc_stops_with_its_workers(nginx_path, portal, tmp_path):
    from demo_app.sbc.start import start, stop
    from tests.fixtures_services import free_port

    running = start(portal, free_port(), directory=tmp_path / "sbc")
    stop(running)
    assert running.process.poll() is not None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"https://127.0.0.1:{running.port}/", verify=False, timeout=5)
