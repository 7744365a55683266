"""The User Sync tab's JavaScript in a real browser: live progress bar, user search picker, mode-switch confirm.

The demo portal is served for real (a werkzeug thread); runs are executed by a real ``flask pbx365 worker``
subprocess; Chromium drives the page as an admin would.
"""
from __future__ import annotations

import json
import re

import pytest

from tests.sso.live import serve

from .test_runs_cli_and_tab import TAB, _stop, _worker

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def portal(env):
    yield from serve(env.app)


def _sign_in(page, url: str) -> None:
    page.goto(f"{url}/admin/login?tenant=acme")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button:has-text('Sign in')")
    page.wait_for_load_state()
    page.goto(url + TAB)


def _exported(env) -> dict:
    result = env.app.test_cli_runner().invoke(args=["pbx365", "settings", "export", "acme"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["user_sync"]


def test_progress_bar_moves_live_and_the_page_shows_the_result(env, portal, page):
    env.settings(write_back_phone=True)
    assert env.sync()["status"] == "done"
    for n in range(4):
        env.add_user(f"new{n}", f"New{n}", "Person")
    _sign_in(page, portal.url)
    page.click("button:has-text('Sync now')")
    bar = page.locator("#pbx365-run [role=progressbar]")
    assert bar.get_attribute("aria-valuenow") == "0"
    run_id = re.search(r"run=([0-9a-f-]+)", page.url).group(1)
    # An incremental round is planned whole, then applied: the first write-back (after a batch of 2 of the 4
    # creates) hangs for a while, so the page must show the run partly applied, updated by its script without
    # reloading.
    env.emulator.add_fault(method="PATCH", path=r"/v1\.0/users/", times=1, delayMs=6000)
    worker = _worker(env, PBX365_SYNC_BATCH_SIZE="2")
    try:
        page.wait_for_function(
            "() => /applying [1-9]\\d*\\/4/.test(document.getElementById('pbx365-run-text').textContent)",
            timeout=60_000)
        assert env.request()["run_id"] == run_id  # a second request while it runs joins it
        now = int(bar.get_attribute("aria-valuenow"))
        assert 0 < now < 100
        assert page.locator("#pbx365-run .bar > div").evaluate("e => e.style.width") == f"{now}%"
        assert "indeterminate" not in (bar.get_attribute("class") or "")
        # When the run ends, the script reloads the page: the box is gone and the history shows the counts.
        page.wait_for_selector("#pbx365-run", state="detached", timeout=60_000)
    finally:
        _stop(worker)
    row = page.locator(f"#run-{run_id}")
    assert row.locator("td").nth(1).inner_text() == "Done"
    assert row.locator("td").nth(2).inner_text() == "4"  # created


def test_user_search_picker_adds_the_user_to_the_filter(env, portal, page):
    carol = env.oid("carol")
    _sign_in(page, portal.url)
    page.fill("#pbx365-user-search", "caro")
    add = page.locator("#pbx365-user-results button")
    add.first.wait_for()
    assert add.all_inner_texts() == [f"Add Carol Clark (carol@{env.domain})"]
    add.first.click()
    assert page.locator("#pbx365-user-results button").count() == 0
    assert page.locator(f"#pbx365-users input[name=users][value='{carol}']").is_checked()
    page.fill("#pbx365-user-search", "nobody-like-this")
    page.wait_for_function("() => document.getElementById('pbx365-user-results').textContent === 'No users found.'")
    page.click("#pbx365-user-sync-form button:has-text('Save')")
    page.wait_for_selector("text=User sync settings saved.")
    assert _exported(env)["users"] == [carol]
    # After the reload the pick is listed by name, and a sync takes only that user.
    assert "Carol Clark" in page.locator("#pbx365-users").inner_text()
    assert env.sync()["status"] == "done"
    assert sorted(env.synced()) == ["carol"]


def test_mode_switch_asks_for_confirmation_first(env, portal, page):
    _sign_in(page, portal.url)
    messages: list[str] = []

    def dismiss(dialog) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.check("input[name=mode][value=automatic]")
    page.click("#pbx365-user-sync-form button:has-text('Save')")
    page.wait_for_timeout(500)  # a dismissed confirm() keeps the page; give a wrongly sent form time to land
    assert len(messages) == 1 and "Switch to automatic mode?" in messages[0]
    assert _exported(env)["mode"] == "manual"

    def accept(dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.click("#pbx365-user-sync-form button:has-text('Save')")
    page.wait_for_selector("text=User sync settings saved.")
    assert len(messages) == 2
    assert _exported(env)["mode"] == "automatic"
    assert page.locator("input[name=mode][value=automatic]").is_checked()
    # Saving again without switching asks nothing.
    page.once("dialog", accept)
    page.click("#pbx365-user-sync-form button:has-text('Save')")
    page.wait_for_selector("text=User sync settings saved.")
    assert len(messages) == 2
