"""Headless Chromium (system binary via Playwright) and nginx work on this machine."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.fixtures_services import free_port, stop_process, wait_for_port


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "index.html").write_text(
        "<!doctype html><html><head><title>PBX infra check</title></head>"
        "<body><h1 id='h'>It works</h1></body></html>"
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_chromium_renders_a_local_page(page, site: str) -> None:
    page.goto(site)
    assert page.title() == "PBX infra check"
    assert page.text_content("#h") == "It works"


def test_nginx_serves_a_static_file(nginx_path: str, tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("hello from nginx")
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {tmp_path}/www;
    }}
}}
""")
    proc = subprocess.Popen([nginx_path, "-p", str(tmp_path), "-c", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, proc=proc)
        answer = requests.get(f"http://127.0.0.1:{port}/hello.txt", timeout=5)
    finally:
        stop_process(proc)
    assert answer.status_code == 200
    assert answer.text == "hello from nginx"
