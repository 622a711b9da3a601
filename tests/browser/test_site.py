"""The whole site in a real browser: every page, in French and English, as an admin.

axe-core finds no serious or critical violation, no request leaves for another origin, the
page's main controls are reached with Tab under a visible focus, and a copied URL gives the
same page. Screenshots of every page go to var/screenshots/site-*.png.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from service.tokens import TokenStore
from tests.browser.conftest import Site, Tab, serious_violations

# (name, path, status, a control the keyboard must reach: a CSS selector)
PAGES = [
    ("home", "/?as_of=2018-07-31", 200, "#as_of"),
    ("editions", "/editions/figures", 200, "details.chart-table summary"),
    ("projects", "/projects?as_of=2018-07-01&sort=cost&order=desc", 200, "#f-q"),
    ("project", "/projects/{project}", 200, "#cost-amount"),
    ("compare", "/compare?from=2018-07-01&to=2018-11-01", 200, "main a[href*='/projects/']"),
    ("audit", "/audit", 200, "main a"),
    ("alerts", "/alerts", 200, "main a[href*='/alerts/new']"),
    ("alert-form", "/alerts/new", 200, "#threshold"),
    ("sign-in", "/sign-in", 200, "#token"),
    ("not-found", "/projects/no-such-project", 404, "header a"),
    ("bad-date", "/?as_of=31-07-2018", 400, "header a"),
]
LANGS = ("fr", "en")


def _api(site: Site, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(site.base + path, timeout=30) as response:  # loopback only
        body: dict[str, Any] = json.load(response)
    return body


@pytest.fixture(scope="module")
def admin(site: Site) -> str:
    return TokenStore(site.services.db).create("admin", name="site-admin")[1]


@pytest.fixture(scope="module")
def project(site: Site) -> str:
    items = _api(site, f"/api/projects?q={quote('CASSIOPEE')}&per_page=10")["items"]
    found: str = items[0]["id"]
    return found


def _url(site: Site, path: str, project: str, lang: str) -> str:
    path = path.format(project=project)
    return f"{site.base}{path}{'&' if '?' in path else '?'}lang={lang}"


def _signed_in(tab: Tab, site: Site, token: str) -> list[str]:
    """Sign in; from then on, record (and refuse) every request to another origin."""
    foreign: list[str] = []

    def route(r: Any) -> None:
        if urlsplit(r.request.url).netloc != urlsplit(site.base).netloc:
            foreign.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    tab.page.context.route("**/*", route)
    tab.page.goto(site.base + "/sign-in")
    tab.page.fill("#token", token)
    tab.page.click("main button[type=submit]")
    tab.page.wait_for_url(site.base + "/")
    return foreign


def _serious(tab: Tab) -> list[Any]:
    return serious_violations(tab.page)


@pytest.mark.parametrize("lang", LANGS)
def test_every_page_passes_axe_and_stays_on_its_origin(
    site: Site, tab: Tab, admin: str, project: str, lang: str
) -> None:
    foreign = _signed_in(tab, site, admin)
    found = {}
    for name, path, status, _ in PAGES:
        response = tab.page.goto(_url(site, path, project, lang))
        assert response is not None and response.status == status, name
        tab.page.wait_for_load_state("networkidle")
        assert tab.page.locator("html").get_attribute("lang") == lang, name
        found[name] = _serious(tab)
        tab.screenshot(f"site-{name}-{lang}")
    assert found == {name: [] for name, *_ in PAGES}
    assert foreign == []
    assert tab.requests and all(u.startswith(site.base + "/") for u in tab.requests)
    assert [e for e in tab.errors if "status of 40" not in e] == []  # the error pages' own 4xx


def _focus(tab: Tab) -> dict[str, Any]:
    found: dict[str, Any] = tab.page.evaluate(
        """() => { const e = document.activeElement; const s = getComputedStyle(e);
        return {outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
                shadow: s.boxShadow !== 'none', tag: e.tagName}; }"""
    )
    return found


@pytest.mark.parametrize(("name", "path", "status", "control"), PAGES)
def test_the_main_control_is_reached_with_tab_under_a_visible_focus(
    site: Site, tab: Tab, admin: str, project: str, name: str, path: str, status: int, control: str
) -> None:
    _signed_in(tab, site, admin)
    tab.page.goto(_url(site, path, project, "en"))
    tab.page.wait_for_load_state("networkidle")
    target = tab.page.locator(control).first
    target.wait_for()
    for _ in range(150):
        tab.page.keyboard.press("Tab")
        if target.evaluate("e => e === document.activeElement"):
            break
    else:
        pytest.fail(f"{control} is not reached with Tab on {name}")
    focus = _focus(tab)
    assert focus["outline"] or focus["shadow"], (name, focus)


def _content(tab: Tab) -> str:
    text: str = tab.page.evaluate(
        """() => { const m = document.querySelector('main').cloneNode(true);
        m.querySelectorAll('time, input[name=idempotency_key], input[name=csrf_token]')
         .forEach(e => e.remove());
        return m.innerText; }"""
    )
    return text


def test_a_copied_url_gives_the_same_page(site: Site, tab: Tab, browser: Any, project: str) -> None:
    page = tab.page
    page.goto(site.base + "/projects?lang=en&sort=cost&order=desc")
    page.fill("#f-q", "SI")
    page.press("#f-q", "Enter")
    page.wait_for_url("**q=SI**")
    page.wait_for_load_state("networkidle")
    urls = [page.url]
    for name, path, status, _ in PAGES:
        if status == 200 and not name.startswith(("alert", "sign-in", "audit")):  # public ones
            urls.append(_url(site, path, project, "en"))
    other = browser.new_context(locale="fr-FR")  # the link's language wins over the reader's
    try:
        seen = Tab(other.new_page(), [], [])
        for url in urls:
            page.goto(url)
            page.wait_for_load_state("networkidle")
            seen.page.goto(url)
            seen.page.wait_for_load_state("networkidle")
            assert seen.page.url == url
            assert _content(seen) == _content(tab), url
    finally:
        other.close()
