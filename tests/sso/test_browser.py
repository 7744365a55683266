"""A person in Chromium: the "Sign in with Microsoft" button on /login?tenant=acme ends on /me."""
from __future__ import annotations

import pytest

from flask_pbx365.testing import PASSWORD

from .live import serve, use_public_urls


@pytest.fixture
def live(app):
    yield from serve(app)


def test_button_click_signs_in_to_the_web_client(sso, live, page):
    use_public_urls(sso, live.url, None)
    sso.sync_users()
    page.goto(f"{live.url}/login?tenant=acme")
    button = page.get_by_role("link", name="Sign in with Microsoft")
    assert button.locator("svg").count() == 1  # Microsoft's logo
    button.click()
    page.fill("#i0116", sso.upn("alice"))
    page.fill("#i0118", PASSWORD)
    page.click("#idSIButton9")
    page.wait_for_url(f"{live.url}/me")
    assert "Alice Anders" in page.content()
