"""The compare page in a real browser, on the real panorama history (issue 11, page 4)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Site, Tab, serious_violations
from tests.browser.test_projects_page import _api

KINDS = ("entered", "left", "phase_changes", "cost_changes", "schedule_changes")


def _ids(tab: Tab, section: str) -> list[str]:
    rows = tab.page.locator(f"section#{section} tbody tr")
    return [rows.nth(i).get_attribute("data-project") for i in range(rows.count())]


@pytest.mark.parametrize(
    ("after", "until"),
    [("2018-07-01", "2018-11-01"), ("2018-07-31", "2018-11-30")],  # the editions, month ends
)
def test_july_to_november_2018_lists_what_the_api_lists(
    site: Site, tab: Tab, after: str, until: str
) -> None:
    page = tab.page
    page.goto(f"{site.base}/compare?from={after}&to={until}")
    api = _api(site, "/api/portfolio/changes", **{"from": after, "to": until})
    assert api["entered"] and api["left"]
    assert _ids(tab, "entered") == [c["id"] for c in api["entered"]]
    assert _ids(tab, "left") == [c["id"] for c in api["left"]]
    legend = page.locator("[data-count]")
    counts = {
        legend.nth(i).get_attribute("data-count"): legend.nth(i).get_attribute("data-value")
        for i in range(legend.count())
    }
    assert counts == {kind: str(api["counts"][kind]) for kind in KINDS}
    cost = page.locator("section#cost_changes tbody tr").first
    assert cost.locator("del").count() == 1 and cost.locator("ins").count() == 1
    event = api["cost_changes"][0]["events"][0]
    link = cost.locator("ul.events a").first.get_attribute("href") or ""
    assert link.startswith(f"/projects/{api['cost_changes'][0]['id']}?as_of={until}")
    assert link.endswith(f"#event-{event['version']}")
    assert tab.errors == []
    assert all(url.startswith(site.base + "/") for url in tab.requests)
    tab.screenshot(f"compare-{after}-{until}")


def test_the_edition_stops_move_the_window(site: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(site.base + "/compare?from=2018-07-01&to=2018-11-01&lang=en")
    page.click("nav[aria-label='To the edition of:'] a:text-is('1 March 2019')")
    page.wait_for_url("**to=2019-03-01**")
    page.wait_for_selector("h1:has-text('1 March 2019')")
    assert "from=2018-07-01" in page.url and "lang=en" in page.url
    api = _api(site, "/api/portfolio/changes", **{"from": "2018-07-01", "to": "2019-03-01"})
    assert _ids(tab, "left") == [c["id"] for c in api["left"]]
    assert page.locator("#from").input_value() == "2018-07-01"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/compare?from=2018-07-01&to=2018-11-01", "axe-compare-fr"),
        ("/compare?from=2016-11-03&to=2019-03-01&lang=en", "axe-compare-en"),
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
