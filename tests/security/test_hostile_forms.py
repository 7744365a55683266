"""Hostile form input on the admin tabs: a clear error, the input kept on the page, and nothing stored."""
from __future__ import annotations

import pytest

from tests.conftest import csrf_from

BASE = "/admin/integrations/microsoft365"


def _exported(app) -> dict:
    from flask_pbx365.settings import export_settings

    with app.app_context():
        return export_settings("acme")


def _post(client, tab: str, data: dict):
    html = client.get(f"{BASE}/{tab}").get_data(as_text=True)
    return client.post(f"{BASE}/{tab}", data={"csrf_token": csrf_from(html, f"{BASE}/{tab}"), **data})


@pytest.mark.parametrize("start", ["12a", "1", "12345678901", "-100", "１２３", "100 OR 1=1"])
def test_an_extension_range_that_is_not_a_number_is_refused_with_its_rule(app, admin_client, start):
    before = _exported(app)
    answer = _post(admin_client, "user-sync", {"mode": "manual", "schedule": "00:00", "timezone": "UTC",
                                               "start_extension": start, "deprovision": "disable",
                                               "delete_after_days": "30", "guard_percent": "10", "guard_max": "500",
                                               "extension_group": "Microsoft 365", "default_region": "US"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400, answer.status_code
    assert "2 to 10 digits" in html
    assert _exported(app) == before


@pytest.mark.parametrize("directory_id", ["not-a-guid", "00000000-0000-0000-0000-00000000000", "{" + "a" * 36 + "}",
                                          "<script>alert(1)</script>"])
def test_a_bad_directory_id_is_refused_and_the_input_kept(app, admin_client, directory_id):
    before = _exported(app)
    answer = _post(admin_client, "configure", {"client_id": "11111111-1111-1111-1111-111111111111",
                                               "directory_id": directory_id, "cloud": "global"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "directory" in html.lower()
    assert "<script>alert(1)</script>" not in html  # kept, but escaped
    assert _exported(app) == before


def test_a_huge_body_is_refused_before_it_is_read(app, admin_client):
    before = _exported(app)
    html = admin_client.get(f"{BASE}/contacts").get_data(as_text=True)
    answer = admin_client.post(f"{BASE}/contacts", data={
        "csrf_token": csrf_from(html, f"{BASE}/contacts"), "shared_mailboxes": "a@b.c\n" * 400_000})
    assert answer.status_code == 413
    assert _exported(app) == before
    small = admin_client.post(f"{BASE}/contacts", data={
        "csrf_token": csrf_from(html, f"{BASE}/contacts"), "shared_mailboxes": "not an address", "mode": "manual",
        "schedule": "00:00"})
    assert small.status_code == 400 and "is not an email address" in small.get_data(as_text=True)
    assert _exported(app) == before
