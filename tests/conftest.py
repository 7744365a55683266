"""Shared fixtures: one app per test (the demo portal as the host), real databases and Redis.

Service fixtures (``redis_url``, ``database_url``, ``browser``...) come from ``tests/fixtures_services.py``; the
Microsoft 365 emulator fixtures (``m365_emulator``, ``m365_tenant``) from the shipped plugin
``flask_pbx365.testing``.
"""
from __future__ import annotations

import re

import pytest

pytest_plugins = ["tests.fixtures_services"]

TEST_SECRET = "test-pbx365-secret"

#: What must never appear in a log line: access/ID/refresh tokens and client assertions (JWTs), private keys,
#: the secrets the tests configure, and OAuth parameters that carry credentials.
SECRET_PATTERNS = [re.compile(p) for p in (
    r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
    r"PRIVATE KEY-----", re.escape(TEST_SECRET), r"test-flask-secret",
    r"client_assertion=[^&\s]{20,}", r"refresh_token[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9._-]{20,}",
    r"[Cc]lient[_ ]?[Ss]tate[\"']?\s*[:=]\s*[\"'][^\"']{16,}",
)]


def secret_leaks(records) -> list[str]:
    """The log records (``logging.LogRecord``) whose message holds a secret, as ``"logger: message"``."""
    return [f"{r.name}: {r.getMessage()[:200]}" for r in records
            if any(p.search(r.getMessage()) for p in SECRET_PATTERNS)]


@pytest.fixture(autouse=True)
def _no_secret_in_captured_logs(caplog):
    """Every test: each log record it captured (INFO and up) is scanned; a secret fails the test that logged it."""
    yield
    leaks = secret_leaks(caplog.get_records("setup") + caplog.get_records("call"))  # .records: the teardown's
    assert not leaks, f"secrets in log lines: {leaks}"


@pytest.fixture
def app(database_url, redis_url, tmp_path):
    """The demo PBX portal with flask_pbx365 mounted, migrated and seeded, on a fresh database."""
    from demo_app import create_app

    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-flask-secret",
        "PBX365_SECRET_KEY": TEST_SECRET,
        "PBX365_REDIS_URL": redis_url,
        "DEMO_EMULATOR_URL": "https://127.0.0.1:9",  # no emulator: `demo init` only seeds
        "DEMO_PUBLIC_URL": "http://portal.test",
        "DEMO_SBC_URL": "https://sbc.test:8444",
    })
    result = app.test_cli_runner().invoke(args=["demo", "init"])
    assert result.exit_code == 0, result.output
    yield app
    from demo_app.models import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def csrf_from(html: str, action_contains: str | None = None) -> str:
    """The CSRF token of the first form on the page (whose action contains ``action_contains``, if given)."""
    for form in re.finditer(r'<form\b[^>]*>(.*?)</form>', html, re.S):
        if action_contains and action_contains not in form.group(0)[:300]:
            continue
        match = re.search(r'name="csrf_token" value="([^"]+)"', form.group(1))
        if match:
            return match.group(1)
    raise AssertionError("no csrf_token field on the page")


def login(client, username: str, password: str, *, page: str = "/admin/login", tenant: str | None = None):
    """Sign in through the host's login form, as a person would."""
    url = page + (f"?tenant={tenant}" if tenant else "")
    html = client.get(url).get_data(as_text=True)
    data = {"username": username, "password": password, "csrf_token": csrf_from(html)}
    if tenant:
        data["tenant"] = tenant
    response = client.post(url, data=data)
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    return response


@pytest.fixture
def admin_client(app):
    """A test client signed in as acme's tenant admin."""
    client = app.test_client()
    login(client, "admin@acme", "admin")
    return client
