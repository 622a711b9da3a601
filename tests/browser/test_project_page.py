"""The project page in a real browser, on the real panorama history (issue 11, pages 3, 5, 8)."""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest

from service.tokens import TokenStore
from tests.browser.conftest import Site, Tab, serious_violations

SIRHEN = "0ab73748-3832-5f1f-9073-4b7cd68e986b"  # imported with a deterministic id


def _api(site: Site, path: str, token: str | None = None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(site.base + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
        return json.load(response)


def _token(site: Site, role: str, *ministries: str, name: str) -> str:
    store = TokenStore(site.services.db)
    found = [r for r in store.records() if r.name == name]
    assert not found, f"token {name} exists: use a new name per test"
    return store.create(role, ministries=ministries, name=name)[1]


def _sign_in(tab: Tab, site: Site, token: str) -> None:
    tab.page.goto(site.base + "/sign-in")
    tab.page.fill("#token", token)
    tab.page.click("main button[type=submit]")
    tab.page.wait_for_url(site.base + "/")


def _project(site: Site, name: str) -> dict[str, Any]:
    items = _api(site, f"/api/projects?q={quote(name)}&per_page=100")["items"]
    found: dict[str, Any] = next(i for i in items if i["name"] == name)
    return found


def _text(tab: Tab, selector: str) -> str:
    text: str = tab.page.locator(selector).first.inner_text()
    return text.replace("\u202f", " ").replace("\u00a0", " ")


def _events(site: Site, project_id: str, name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = _api(
        site, f"/api/projects/{project_id}/events", _token(site, "auditor", name=name)
    )
    return events


def test_a_project_of_the_real_history_shows_its_timeline(site: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{site.base}/projects/{SIRHEN}?as_of=2019-03-01")
    assert page.locator("h1").inner_text() == "SIRHEN"
    events = _events(site, SIRHEN, "aud-timeline")
    entries = page.locator(".timeline > li")
    assert entries.count() == len(events) == 16
    ids = [entries.nth(i).get_attribute("id") for i in range(entries.count())]
    assert ids == [f"event-{e['version']}" for e in events]
    first = _text(tab, "#event-1")
    assert "Enregistré" in first and "3 novembre 2016" in first and "panorama:2016-11" in first
    assert "import" in first and "Coût : 496,40 M€" in first
    moved = _text(tab, "#event-3")
    assert "Phase changée" in moved and "publishes phase 'Expérimentation'" in moved
    assert page.locator("#event-16").get_attribute("data-type") == "FiguresWithheld"
    assert _text(tab, "[data-fact=cost] .fact-value") == "non publié"  # withheld in 2019-03
    api = _api(site, f"/api/projects/{SIRHEN}?as_of=2019-03-01")
    assert api["figures_withheld"] and api["cost"] is None
    page.goto(f"{site.base}/projects/{SIRHEN}?as_of=2018-07-31")
    assert _text(tab, "[data-fact=cost] .fact-value") == "496,48 M€"
    assert page.locator(".after-as-of").count() == 4  # the 2018-11 and 2019-03 events
    page.wait_for_selector("[data-chart] svg")
    assert page.locator("[data-chart] svg").count() == 2
    page.locator("#chart-cost-title ~ details summary").click()
    assert "496,48 M€" in _text(tab, "#chart-cost-title ~ details table")
    assert all(url.startswith(site.base + "/") for url in tab.requests) and tab.errors == []
    tab.screenshot("project-fr")


def test_a_manager_submits_a_cost_reestimate_and_sees_it(site: Site, tab: Tab) -> None:
    project = _project(site, "FRANCE VISAS")
    _sign_in(tab, site, _token(site, "manager", project["ministry_code"], name="mgr-cost"))
    page = tab.page
    page.goto(f"{site.base}/projects/{project['id']}?lang=en")
    page.fill("#cost-amount", "123456789.00")
    page.fill("#cost-narrative", "New estimate after the 2025 review")
    page.click("#form-cost button[type=submit]")
    page.wait_for_url("**min_position=**")
    assert _text(tab, "[data-fact=cost] .fact-value") == "€123.46m"
    assert "The new cost is recorded." in _text(tab, ".notice[role=status]")
    last = page.locator(".timeline > li").last
    assert "Cost re-estimated" in last.inner_text() and "token:mgr-cost" in last.inner_text()
    assert "New estimate after the 2025 review" in last.inner_text()
    assert _api(site, f"/api/projects/{project['id']}")["cost"] == "123456789.00"
    tab.screenshot("project-after-reestimate-en")


def test_a_second_tab_with_the_stale_form_gets_the_conflict_page(
    site: Site, tab: Tab, browser: Any
) -> None:
    project = _project(site, "PORTALIS")
    _sign_in(tab, site, _token(site, "manager", project["ministry_code"], name="mgr-two-tabs"))
    first, second = tab.page, tab.page.context.new_page()
    url = f"{site.base}/projects/{project['id']}"
    first.goto(url)
    second.goto(url)
    first.fill("#schedule-planned-end", "2026-12-31")
    first.click("#form-schedule button[type=submit]")
    first.wait_for_url("**min_position=**")
    second.fill("#cost-amount", "987654321.00")
    second.fill("#cost-narrative", "typed in the second tab")
    with second.expect_response(lambda r: r.request.method == "POST") as posted:
        second.click("#form-cost button[type=submit]")
    assert posted.value.status == 409
    conflict = second.locator(".conflict").inner_text()
    assert "Le projet a changé" in conflict and "token:mgr-two-tabs" in conflict
    assert "Fin prévue réestimée" in conflict and "31 décembre 2026" in conflict
    assert second.locator("#cost-amount").input_value() == "987654321.00"
    assert second.locator("#cost-narrative").input_value() == "typed in the second tab"
    second.click("#form-cost button[type=submit]")  # on the new version: recorded
    second.wait_for_url("**min_position=**")
    assert _text(Tab(second, [], []), "[data-fact=cost] .fact-value") == "987,65 M€"
    tab.screenshot("project-conflict-resolved")


def test_a_refusal_shows_the_domain_message_next_to_the_field(site: Site, tab: Tab) -> None:
    project = _project(site, "CASSIOPEE")
    _sign_in(tab, site, _token(site, "manager", project["ministry_code"], name="mgr-refused"))
    page = tab.page
    page.goto(f"{site.base}/projects/{project['id']}?lang=en")
    page.select_option("#rating-rating", "Red")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("#form-rating button[type=submit]")
    assert posted.value.status == 422
    assert "Red rating needs a narrative" in _text(tab, "#rating-narrative-error")
    described = page.locator("#rating-narrative").get_attribute("aria-describedby") or ""
    assert "rating-narrative-error" in described.split()
    assert page.locator("#rating-rating").input_value() == "Red"
    page.click(".error-summary a")
    assert page.evaluate("document.activeElement.id") == "rating-narrative"
    page.fill("#rating-narrative", "Key supplier failed")
    page.click("#form-rating button[type=submit]")
    page.wait_for_url("**min_position=**")
    assert page.locator("[data-fact=rating] .rating-red").inner_text() == "Red"
    assert "Key supplier failed" in _text(tab, "section[aria-labelledby=ratings-title]")


def test_the_same_form_posted_twice_records_once(site: Site, tab: Tab) -> None:
    project = _project(site, "ELIRE")
    _sign_in(tab, site, _token(site, "manager", project["ministry_code"], name="mgr-twice"))
    page = tab.page
    page.goto(f"{site.base}/projects/{project['id']}")
    before = len(_events(site, project["id"], "aud-twice-1"))
    page.fill("#cost-amount", "555000000")
    form = page.evaluate("Object.fromEntries(new FormData(document.querySelector('#form-cost')))")
    action = site.base + (page.locator("#form-cost").get_attribute("action") or "")
    answers = [page.request.post(action, form=form, max_redirects=0) for _ in range(2)]
    assert [a.status for a in answers] == [303, 303]
    assert answers[1].headers["idempotent-replayed"] == "true"
    after = _events(site, project["id"], "aud-twice-2")
    assert len(after) == before + 1 and after[-1]["payload"]["amount"] == "555000000.00"


def test_an_auditor_sets_known_at_before_a_correction_and_sees_it_marked(
    site: Site, tab: Tab
) -> None:
    project = _project(site, "ASTREA")
    pid = project["id"]
    known = _events(site, pid, "aud-known-1")[-1]["recorded_at"]
    admin = _token(site, "admin", name="adm-correction")
    body = {
        "effective_date": "2018-07-15",
        "amount": "42000000.00",
        "narrative": "Corrected: the July 2018 edition misprinted the cost",
        "correction": True,
    }
    recorded = _api(site, f"/api/projects/{pid}/cost-estimates", admin, body)
    _api(site, f"/api/projects/{pid}?min_position={recorded['position']}")
    _sign_in(tab, site, _token(site, "auditor", name="aud-known-2"))
    page = tab.page
    page.goto(f"{site.base}/projects/{pid}?as_of=2018-07-31")
    assert _text(tab, "[data-fact=cost] .fact-value") == "42,00 M€"
    page.fill("#known_at", known)
    page.click("#known_at ~ button")
    page.wait_for_url("**known_at=**")
    before = _api(site, f"/api/projects/{pid}?as_of=2018-07-31&known_at={quote(known)}", admin)
    shown = _text(tab, "[data-fact=cost] .fact-value").replace(" M€", "")
    assert (
        shown.replace(",", ".") == f"{Decimal(before['cost']) / 1000000:.2f}"
        and before["cost"] != "42000000.00"
    )
    mark = _text(tab, "[data-revised=cost]")
    assert "désormais 42,00 M€" in mark and "misprinted the cost" in mark
    assert "token:adm-correction" in mark and "15 juillet 2018" in mark
    link = page.locator("[data-revised=cost] a").get_attribute("href") or ""
    assert link.endswith(f"#event-{recorded['version']}") and "known_at" not in link
    assert page.locator("[data-revised=budget_drift_pct]").count() == 1
    assert page.locator("[data-revised=phase]").count() == 0
    tab.screenshot("project-known-at-fr")


def _serious(tab: Tab) -> list[Any]:
    tab.page.wait_for_load_state("networkidle")
    return serious_violations(tab.page)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_axe_finds_nothing_serious_on_the_page_its_forms_and_the_conflict_page(
    site: Site, tab: Tab, lang: str
) -> None:
    project = _project(site, "PNR")
    _sign_in(tab, site, _token(site, "manager", project["ministry_code"], name=f"mgr-axe-{lang}"))
    page = tab.page
    url = f"{site.base}/projects/{project['id']}?lang={lang}"
    page.goto(url)
    assert page.locator("form.command-form").count() == 4
    assert _serious(tab) == []
    tab.screenshot(f"axe-project-{lang}")
    page.fill("#cost-amount", "not an amount")
    page.click("#form-cost button[type=submit]")
    page.wait_for_selector(".error-summary")
    assert _serious(tab) == []
    tab.screenshot(f"axe-project-refused-{lang}")
    stale = page.context.new_page()
    stale.goto(url)
    page.goto(url)
    page.fill("#schedule-planned-end", "2027-06-30")
    page.click("#form-schedule button[type=submit]")
    page.wait_for_url("**min_position=**")
    stale.fill("#cost-amount", "1000000")
    stale.click("#form-cost button[type=submit]")
    stale.wait_for_selector(".conflict")
    assert _serious(Tab(stale, [], [])) == []
    Tab(stale, [], []).screenshot(f"axe-project-conflict-{lang}")
