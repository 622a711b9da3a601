"""The funding programme pages in a real browser, on the FTAP files (issue 14, pages)."""

from __future__ import annotations

import pytest

from importers.ftap import parse_ftap
from importers.ftap_run import import_ftap, programme_id
from importers.matching import project_id
from tests.browser.conftest import Site, Tab, serious_violations
from tests.conftest import SHARED_DATA

FTAP = SHARED_DATA / "ftap"
FTAP_1 = programme_id("FTAP 2018-2022")
FRANCECONNECT = project_id("panorama", "franceconnectphaseii")


@pytest.fixture(scope="module")
def ftap(site: Site) -> Site:
    """The site with the FTAP imported after the panorama history."""
    portfolio = site.services.portfolio
    files = parse_ftap(
        FTAP / "ftap_awards.csv", FTAP / "ftap_programme.csv", today=portfolio.today()
    )
    summary = import_ftap(portfolio, files)
    assert summary.position is not None
    site.services.after_commit(summary.position)
    return site


def _cells(tab: Tab, row: str) -> list[str]:
    cells = tab.page.locator(row).locator("th, td")
    return [cells.nth(i).inner_text().strip() for i in range(cells.count())]


def test_call_2018_1_shows_published_against_itemised(ftap: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{ftap.base}/programmes/{FTAP_1}?as_of=2018-06-30&lang=en")
    assert page.locator("h1").inner_text() == "FTAP 2018-2022 on 30 June 2018"
    calls = page.locator("section#calls-title, section[aria-labelledby='calls-title']")
    row = calls.locator("table").first.locator("tbody tr").first
    cells = [row.locator("th, td").nth(i).inner_text() for i in range(7)]
    assert cells == ["2018-1", "17", "€126.00m", "11", "€98.30m", "6", "€27.70m"]
    assert page.locator("dl.facts").inner_text().count("€700.00m") == 1
    link = page.locator(f"a[href^='/projects/{FRANCECONNECT}']")
    assert link.inner_text().startswith("FranceConnect Plateforme - Phase 2")
    link.click()
    page.wait_for_url(f"**/projects/{FRANCECONNECT}**")
    funding = page.locator("section[aria-labelledby='funding-title']")
    assert "€19.30m" in funding.inner_text() and "FTAP 2018-2022" in funding.inner_text()
    awarded = funding.locator("table").first.locator("tbody tr").first.locator("td").first
    assert awarded.inner_text() == "FTAP 2018-2022"  # the programme's name, not its id
    assert awarded.locator("a").get_attribute("href").startswith(f"/programmes/{FTAP_1}")
    assert tab.errors == []
    assert all(url.startswith(ftap.base + "/") for url in tab.requests)
    tab.screenshot("programme-ftap-2018-06-30-en")


def test_the_envelope_chart_has_its_table_and_the_revision(ftap: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{ftap.base}/programmes/{FTAP_1}?as_of=2022-07-01")
    assert "780,00" in page.locator("dl.facts").inner_text()  # French: 780,00 M€
    page.wait_for_selector("[data-chart] svg")
    assert page.locator("[data-chart] svg").count() == 1
    page.locator("#chart-envelope-title ~ details summary").click()
    rows = page.locator("#chart-envelope-title ~ details tbody tr")
    assert rows.count() >= 5
    assert "780,00" in rows.last.inner_text()
    assert "1 janvier 2022" in page.locator("table").nth(1).inner_text()  # the revision
    assert tab.errors == []
    tab.screenshot("programme-ftap-2022-07-01-fr")


def test_the_list_links_to_each_programme_and_keeps_the_date(ftap: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{ftap.base}/programmes?as_of=2024-01-01&lang=en")
    names = page.locator("tbody th a")
    assert [names.nth(i).inner_text() for i in range(names.count())] == [
        "FTAP 2018-2022",
        "FTAP 2023-2025",
    ]
    names.first.click()
    page.wait_for_url("**as_of=2024-01-01**")
    assert "lang=en" in page.url
    tab.screenshot("programmes-2024-01-01-en")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (f"/programmes/{FTAP_1}?as_of=2019-03-01", "axe-programme-fr"),
        (f"/programmes/{FTAP_1}?as_of=2023-01-01&lang=en", "axe-programme-en"),
        ("/programmes?lang=en", "axe-programmes-en"),
    ],
)
def test_axe_finds_no_serious_or_critical_violation(
    ftap: Site, tab: Tab, path: str, name: str
) -> None:
    tab.page.goto(ftap.base + path)
    tab.page.wait_for_load_state("networkidle")
    bad = serious_violations(tab.page)
    assert bad == []
    tab.screenshot(name)
