"""The home page in a real browser, on the real panorama history (issue 11, page 1)."""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal
from typing import Any

import pytest

from tests.browser.conftest import Site, Tab, serious_violations

BAND = (
    "projects",
    "interministerial_projects",
    "total_cost_engaged",
    "mean_duration_years",
    "mean_schedule_drift_pct",
    "mean_budget_drift_pct",
)


def _api(site: Site, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(site.base + path, timeout=30) as response:  # loopback only
        body: dict[str, Any] = json.load(response)
    return body


def _band(tab: Tab) -> dict[str, str]:
    figures = tab.page.locator("[data-figure]")
    return {
        figures.nth(i).get_attribute("data-figure"): figures.nth(i).get_attribute("data-value")
        for i in range(figures.count())
    }


def _shown(tab: Tab, key: str) -> str:
    text: str = tab.page.locator(f"[data-figure={key}] .figure-value").inner_text()
    return text.replace("\u202f", " ").replace("\u00a0", " ")


def _same_origin_only(site: Site, tab: Tab) -> None:
    assert tab.requests and all(url.startswith(site.base + "/") for url in tab.requests)
    assert tab.errors == []  # no CSP violation, no script error, no missing file


def test_moving_the_date_to_31_july_2018_shows_the_api_figures(site: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(site.base + "/")
    page.fill("#as_of", "2018-07-31")
    page.click(".date-control button")
    page.wait_for_url("**as_of=2018-07-31**")
    page.wait_for_selector("h1:has-text('31 juillet 2018')")
    api = _api(site, "/api/portfolio/summary?as_of=2018-07-31")
    band = _band(tab)
    assert {k: Decimal(band[k]) for k in BAND} == {k: Decimal(api[k]) for k in BAND}
    assert _shown(tab, "projects") == "56"
    assert _shown(tab, "total_cost_engaged") == "2 553,58 M€"
    editions = _api(site, "/api/editions")["items"]
    before = next(e for e in editions if e["ref"] == "2018-03")
    changes = _api(site, f"/api/portfolio/changes?from={before['date']}&to=2018-07-31")
    assert band["entered"] == str(changes["counts"]["entered"])
    assert band["left"] == str(changes["counts"]["left"])
    page.wait_for_selector("[data-chart] svg")
    assert page.locator("[data-chart] svg").count() == 4  # every chart drawn, in SVG
    _same_origin_only(site, tab)
    tab.screenshot("home-fr")


def test_an_edition_stop_moves_the_page_to_that_edition(site: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(site.base + "/?as_of=2018-07-31")
    page.click("#edition-panorama-2019-03")
    page.wait_for_url("**as_of=2019-03-01**")
    page.wait_for_selector("h1:has-text('1 mars 2019')")
    assert _band(tab)["projects"] == str(
        _api(site, "/api/portfolio/summary?as_of=2019-03-01")["projects"]
    )
    assert page.locator("#as_of").input_value() == "2019-03-01"
    assert "as_of=2019-03-01" in (page.locator("a[hreflang=en]").get_attribute("href") or "")


def test_switching_to_english_keeps_the_page_and_its_state(site: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(site.base + "/?as_of=2018-07-31")
    page.click("a[hreflang=en]")
    page.wait_for_url("**lang=en**")
    assert "as_of=2018-07-31" in page.url
    assert page.locator("h1").inner_text() == "The portfolio on 31 July 2018"
    assert page.locator("html").get_attribute("lang") == "en"
    assert _shown(tab, "total_cost_engaged") == "€2,553.58m"
    assert page.locator("#as_of").input_value() == "2018-07-31"
    page.wait_for_selector("[data-chart] svg")
    _same_origin_only(site, tab)
    tab.screenshot("home-en")


def test_the_keyboard_reaches_and_opens_every_table_alternative(site: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(site.base + "/?as_of=2018-07-31")
    reached = []
    for _ in range(80):
        if len(reached) == 4:
            break
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "SUMMARY":
            reached.append(page.evaluate("document.activeElement.textContent.trim()"))
            if len(reached) == 1:
                page.keyboard.press("Enter")
                assert page.locator("details[open] table").first.is_visible()
    assert reached == [
        "Tableau : Coût par ministère",
        "Tableau : Projets par phase",
        "Tableau : Répartition des écarts budgétaires",
        "Tableau : Chiffres clés à chaque édition",
    ]


def test_the_skip_link_is_the_first_stop_and_leads_to_the_content(site: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(site.base + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/?as_of=2018-07-31", "axe-home-fr"),
        ("/?lang=en", "axe-home-en"),
        ("/sign-in", "axe-sign-in"),
    ],
)
def test_axe_finds_no_serious_or_critical_violation(
    site: Site, tab: Tab, path: str, name: str
) -> None:
    tab.page.goto(site.base + path)
    tab.page.wait_for_load_state("networkidle")
    bad = serious_violations(tab.page)
    assert bad == []
    tab.screenshot(name)


def test_the_editions_are_the_eight_imported_with_their_dates(site: Site) -> None:
    body = _api(site, "/api/editions")
    refs = [(e["ref"], e["date"], e["series"]) for e in body["items"]]
    assert refs == [
        ("2016-11", "2016-11-03", "panorama"),
        ("2017-02", "2017-02-01", "panorama"),
        ("2017-06", "2017-06-01", "panorama"),
        ("2017-11", "2017-11-01", "panorama"),
        ("2018-03", "2018-02-28", "panorama"),
        ("2018-07", "2018-07-01", "panorama"),
        ("2018-11", "2018-11-01", "panorama"),
        ("2019-03", "2019-03-01", "panorama"),
    ]
    positions = [e["position"] for e in body["items"]]
    assert positions == sorted(positions) and positions[-1] == body["position"]
