"""The projects page in a real browser, on the real panorama history (issue 11, page 2)."""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.browser.conftest import Site, Tab, serious_violations

PHASE = "Conception / Réalisation"
FILTERS = {"as_of": "2018-07-01", "ministry": "MEF", "phase": PHASE}


def _api(site: Site, path: str, **query: Any) -> dict[str, Any]:
    url = site.base + path + "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=30) as response:  # loopback only
        body: dict[str, Any] = json.load(response)
    return body


def _rows(tab: Tab) -> list[tuple[str, str]]:
    rows = tab.page.locator("#results tbody tr")
    return [
        (rows.nth(i).get_attribute("data-project"), rows.nth(i).locator("th").inner_text())
        for i in range(rows.count())
    ]


def _tab_to(tab: Tab, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(limit):
        tab.page.keyboard.press("Tab")
        if tab.page.evaluate(f"document.activeElement.matches({json.dumps(selector)})"):
            return
    raise AssertionError(f"the keyboard never reached {selector}")


def test_filter_sort_page_and_the_copied_link_gives_the_same_rows(
    site: Site, tab: Tab, browser: Any
) -> None:
    page = tab.page
    page.goto(site.base + "/projects?as_of=2018-07-01&per_page=5")
    page.select_option("#f-ministry", "MEF")
    page.select_option("#f-phase", PHASE)
    page.click("#filters button[type=submit]")
    page.wait_for_url("**ministry=MEF**")
    page.click("th a[data-sort=cost]")
    page.wait_for_url("**order=asc**")
    page.click("th a[data-sort=cost]")
    page.wait_for_url("**order=desc**")
    assert page.locator("th[aria-sort=descending] a[data-sort=cost]").count() == 1
    page.click("nav.pager a[aria-label='Page 2']")
    page.wait_for_url("**page=2**")
    page.wait_for_selector(".pager a[aria-current=page]:text-is('2')")
    shown = _rows(tab)
    api = _api(site, "/api/projects", **FILTERS, sort="-cost", per_page=5, page=2)
    assert [pid for pid, _ in shown] == [item["id"] for item in api["items"]]
    assert len(shown) == api["total"] - 5 > 0
    count = page.locator("#results-count").inner_text()
    assert count.startswith(f"6–{api['total']} sur {api['total']} projets")

    copied = browser.new_context(locale="fr-FR").new_page()
    copied.goto(page.url)
    again = copied.locator("#results tbody tr")
    assert [again.nth(i).get_attribute("data-project") for i in range(again.count())] == [
        pid for pid, _ in shown
    ]
    assert copied.locator("#f-ministry").input_value() == "MEF"
    assert copied.locator("#f-phase").input_value() == PHASE
    copied.context.close()
    assert tab.errors == []
    assert all(url.startswith(site.base + "/") for url in tab.requests)
    tab.screenshot("projects-fr")


def test_the_csv_download_is_the_whole_filtered_sorted_view(site: Site, tab: Tab) -> None:
    page = tab.page
    query = urllib.parse.urlencode({**FILTERS, "sort": "cost", "order": "desc", "per_page": 5})
    page.goto(f"{site.base}/projects?{query}")
    with page.expect_download() as info:
        page.click(".downloads a:text-is('CSV')")
    text = open(info.value.path(), encoding="utf-8-sig").read()  # noqa: SIM115
    rows = list(csv.DictReader(io.StringIO(text)))
    api = _api(site, "/api/projects", **FILTERS, sort="-cost", per_page=1000)
    assert [r["id"] for r in rows] == [item["id"] for item in api["items"]]
    assert len(rows) == api["total"] > 5  # every page, not only the first
    assert {r["ministry_code"] for r in rows} == {"MEF"} and {r["phase"] for r in rows} == {PHASE}
    first_page = [pid for pid, _ in _rows(tab)]
    assert first_page == [r["id"] for r in rows][:5]


def test_the_filter_form_and_the_sort_headers_work_with_the_keyboard(site: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(site.base + "/projects?as_of=2018-07-01&lang=en")
    _tab_to(tab, "#f-ministry")
    page.keyboard.type("MEF")
    assert page.locator("#f-ministry").input_value() == "MEF"
    _tab_to(tab, "#filters button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**ministry=MEF**")
    page.wait_for_selector("#results tbody tr")
    assert {t for t in page.locator("#results tbody td:nth-child(2)").all_inner_texts()} == {"MEF"}
    _tab_to(tab, "th a[data-sort=budget_drift]")
    page.keyboard.press("Enter")
    page.wait_for_url("**sort=budget_drift**")
    page.wait_for_selector("th[aria-sort=ascending] a[data-sort=budget_drift]")
    assert "lang=en" in page.url and "ministry=MEF" in page.url
    api = _api(site, "/api/projects", as_of="2018-07-01", ministry="MEF", sort="budget_drift")
    assert [pid for pid, _ in _rows(tab)] == [item["id"] for item in api["items"]][:20]


def test_withheld_figures_read_as_withheld(site: Site, tab: Tab) -> None:
    tab.page.goto(site.base + "/projects?as_of=2019-03-01&q=SIRHEN&lang=en")
    row = tab.page.locator("#results tbody tr")
    assert row.count() == 1
    assert row.locator("[data-withheld=cost]").inner_text() == "withheld"
    api = _api(site, "/api/projects", as_of="2019-03-01", q="SIRHEN")
    assert api["items"][0]["figures_withheld"] is True and api["items"][0]["cost"] is None
    tab.screenshot("projects-withheld-en")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/projects?as_of=2018-07-01&per_page=10&page=2", "axe-projects-fr"),
        ("/projects?as_of=2019-03-01&lang=en&sort=cost&order=desc", "axe-projects-en"),
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
