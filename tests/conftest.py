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
