"""Every page an admin or a user opens, in Chromium: usable with the keyboard alone, readable at 1366×768 and
390×844 (no sideways scrolling), and no axe-core violation of serious or critical impact.

The pages are the integration's tabs (with data in them: a synced tenant, a run's detail, a sent mail), the
demo portal's pages the integration fills (users, phonebook) and the sign-in pages with the Microsoft button.
Screenshots go to ``test-artifacts/pages/``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.overview.test_overview_browser import _serious, _sign_in
from tests.sso.live import serve
from tests.sync.conftest import env  # noqa: F401  (the fixture)

pytestmark = pytest.mark.timeout(300)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "pages"
BASE = "/admin/integrations/microsoft365"
ADMIN_PAGES = ["overview", "configure", "user-sync", "user-sync/runs/{run}", "sign-in", "contacts", "mail",
               "presence", "teams-presence"]
PUBLIC_PAGES = ["/login?tenant=acme", "/admin/login?tenant=acme"]

#: What a keyboard user can reach: every visible, enabled control.
FOCUSABLE = ("() => [...document.querySelectorAll('a[href], button:not([disabled]), "
             "input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled]), "
             "[tabindex]:not([tabindex=\"-1\"])')]"
             ".filter(e => e.offsetParent !== null || getComputedStyle(e).position === 'fixed')")


@pytest.fixture
def portal(env):  # noqa: F811
    yield from serve(env.app)


@pytest.fixture
def pages(env, portal) -> list[str]:  # noqa: F811
    """The tenant synced, Sign in with Microsoft and mail set up, so every tab has content to show."""
    from flask_pbx365.settings import import_settings

    run = env.sync()
    assert run["status"] == "done"
    with env.app.app_context():
        import_settings("acme", {"sign_in": {"enabled": True, "targets": ["admin", "web", "app"]},
                                 "mail": {"enabled": False, "sender": f"admin@{env.domain}"}})
    return ([f"{portal.url}{BASE}/{p.format(run=run['run_id'])}" for p in ADMIN_PAGES]
            + [portal.url + p for p in PUBLIC_PAGES]
            + [f"{portal.url}/admin/users", f"{portal.url}/admin/phonebook"])


def _unreachable_by_tab(page) -> list[str]:
    """Controls that pressing Tab (from the top of the page, all the way round) never focuses."""
    count = page.evaluate(f"() => ({FOCUSABLE})().map((e, i) => e.setAttribute('data-kb', i)).length")
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    seen: set[str] = set()
    for _ in range(count + 3):
        page.keyboard.press("Tab")
        seen.add(page.evaluate("() => document.activeElement && document.activeElement.getAttribute('data-kb')"))
    # A radio group is one Tab stop (the arrow keys move within it): reaching one of its radios reaches all.
    return page.evaluate("""seen => {
        const got = [...document.querySelectorAll('[data-kb]')].filter(e => seen.includes(e.getAttribute('data-kb')));
        const groups = new Set(got.filter(e => e.type === 'radio').map(e => e.form + '|' + e.name));
        return [...document.querySelectorAll('[data-kb]')]
          .filter(e => !got.includes(e) && !(e.type === 'radio' && groups.has(e.form + '|' + e.name)))
          .map(e => e.outerHTML.slice(0, 120));
      }""", [s for s in seen if s is not None])


def _focus_is_visible(page) -> list[str]:
    """Controls whose keyboard focus leaves no visible mark (no outline and no box shadow)."""
    return page.evaluate(f"""() => ({FOCUSABLE})().slice(0, 40).filter(e => {{
        e.focus({{focusVisible: true}});
        const s = getComputedStyle(e);
        return (s.outlineStyle === 'none' || parseFloat(s.outlineWidth) === 0) && s.boxShadow === 'none';
      }}).map(e => e.outerHTML.slice(0, 120))""")


def test_every_page_works_with_the_keyboard_at_both_sizes_without_axe_violations(env, pages, page):  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    problems: dict[str, list[str]] = {}
    for url in pages:
        page.context.clear_cookies()
        if "/login" not in url:
            _sign_in(page, url.split("/admin")[0] if "/admin" in url else url)
        path = url.split("//", 1)[1].split("/", 1)[1].split("?")[0].replace(BASE[1:] + "/", "")
        name = re.sub(r"runs/[0-9a-f-]+", "run-detail", path).replace("/", "-")
        for width, height in ((1366, 768), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            response = page.goto(url)
            assert response.status == 200, url
            page.screenshot(path=str(ARTIFACTS / f"{name}-{width}x{height}.png"), full_page=True)
            found = [f"axe: {v}" for v in _serious(page)]
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 1:
                found.append(f"scrolls sideways by {overflow}px")
            if width == 1366:
                found += [f"not reachable with Tab: {e}" for e in _unreachable_by_tab(page)]
                found += [f"focus not visible: {e}" for e in _focus_is_visible(page)]
            if found:
                problems[f"{url} at {width}x{height}"] = found
    assert problems == {}, "\n".join(f"{k}: {p}" for k, v in problems.items() for p in v)
