"""The Overview in a real browser (Debian Chromium through Playwright): the admin lands on it, uses it with the
keyboard alone, reads it at 1366×768 and 390×844, and axe-core finds no serious or critical violation. The demo
portal is served by a real HTTP server; screenshots go to ``test-artifacts/overview/``."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest
from werkzeug.serving import make_server

from tests.sync.conftest import env  # noqa: F401  (the fixture)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "overview"
OVERVIEW = "/admin/integrations/microsoft365/overview"


@pytest.fixture
def portal(env) -> Iterator[str]:  # noqa: F811
    server = make_server("127.0.0.1", 0, env.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def _sign_in(page, portal: str) -> None:
    page.goto(f"{portal}/admin/login?tenant=acme")
    page.fill("input[name=username]", "admin@acme")
    page.fill("input[name=password]", "admin")
    with page.expect_navigation():
        page.keyboard.press("Enter")


def _serious(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]} "
            f"{[n.get('failureSummary', '')[:160] for n in v['nodes']][:2]}"
            for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


def test_overview_in_chromium_keyboard_viewports_and_axe(page, portal):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _sign_in(page, portal)
    page.goto(f"{portal}/admin/integrations/microsoft365/")
    assert page.url.endswith(OVERVIEW)  # the landing page
    assert page.locator("tr[data-check=connection]").get_attribute("data-state") == "warning"

    # Keyboard alone: Tab to "Check now", press Enter; the connection line turns ok.
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.textContent.trim()") == "Check now":
            break
    else:
        pytest.fail("'Check now' cannot be reached with the Tab key")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("tr[data-check=connection]").get_attribute("data-state") == "ok"
    assert page.locator("tr[data-check=permissions]").get_attribute("data-state") == "ok"

    for width, height in ((1366, 768), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(portal + OVERVIEW)
        page.screenshot(path=str(ARTIFACTS / f"overview-{width}x{height}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page scrolls sideways by {overflow}px at {width}x{height}"
        assert page.locator("#pbx365-health").is_visible()
        assert _serious(page) == [], f"axe at {width}x{height}"
