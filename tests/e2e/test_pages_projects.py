"""The projects and compare pages over HTTP: bad parameters, paging edges, withheld figures."""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.e2e.conftest import Http


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    """A client without a bearer token, like a person's browser (PUBLIC_READ)."""
    return app.test_client()


def _count(html: str) -> str:
    found = re.search(r'id="results-count" role="status">\s*(.*?)\s*<span', html, re.S)
    assert found, html
    return found.group(1)


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-project="([^"]+)">', html)


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("sort=colour", "sort"),
        ("order=up", "order"),
        ("page=0", "page"),
        ("page=two", "page"),
        ("per_page=7", "per_page"),
        ("phase=Rêverie", "phase"),
        ("rating=Purple", "rating"),
        ("budget_drift_min=abc", "budget_drift_min"),
        ("schedule_drift_max=nan", "schedule_drift_max"),
        ("budget_drift_min=10&budget_drift_max=5", "budget_drift_min"),
        ("as_of=2024-02-30", "as_of"),
        ("colour=red", "colour"),
    ],
)
def test_a_bad_parameter_of_the_projects_page_is_a_400_page_naming_it(
    browser: FlaskClient, query: str, name: str
) -> None:
    response = browser.get(f"/projects?{query}&lang=en")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert f"parameter or field: {name}" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("from=2024-06-30&to=2024-01-01", "from"),
        ("from=2099-01-01", "from"),  # after today, the default `to`
        ("from=30/06/2024", "from"),
        ("to=yesterday", "to"),
        ("as_of=2024-06-30", "as_of"),  # the compare page has two dates, not one
    ],
)
def test_a_bad_parameter_of_the_compare_page_is_a_400_page_naming_it(
    browser: FlaskClient, query: str, name: str
) -> None:
    response = browser.get(f"/compare?{query}&lang=en")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert f"parameter or field: {name}" in response.get_data(as_text=True)


def test_paging_edges_first_last_beyond_and_empty(browser: FlaskClient, http: Http) -> None:
    empty = browser.get("/projects?lang=en")
    assert empty.status_code == 200
    assert "No project matches these filters on this date." in empty.get_data(as_text=True)
    assert browser.get("/projects?page=2").status_code == 404
    ids = [http.register(name=f"SI {n:02d}", ministry_code="MI") for n in range(6)]
    first = browser.get("/projects?per_page=5&lang=en").get_data(as_text=True)
    assert _count(first) == "1–5 of 6 projects"
    assert _rows(first) == ids[:5]  # sorted by name
    assert 'rel="next"' in first and 'rel="prev"' not in first
    last = browser.get("/projects?per_page=5&page=2&lang=en").get_data(as_text=True)
    assert _count(last) == "6–6 of 6 projects" and _rows(last) == ids[5:]
    assert 'rel="prev"' in last and 'rel="next"' not in last
    beyond = browser.get("/projects?per_page=5&page=3&lang=en")
    assert beyond.status_code == 404
    assert "page 3 is beyond the last page, 2" in beyond.get_data(as_text=True)
    whole = browser.get("/projects?per_page=10&lang=en").get_data(as_text=True)
    assert _count(whole) == "1–6 of 6 projects" and 'class="pager"' not in whole


def test_an_empty_form_field_is_no_filter_and_the_filters_narrow(
    browser: FlaskClient, http: Http
) -> None:
    paie = http.register(name="SI paie", ministry_code="MINARM", cost="1000000.00")
    http.register(name="SI justice", ministry_code="MJ", cost="2000000.00")
    assert http.command(paie, "cost-estimates", {"amount": "1500000.00"}).status_code == 201
    form = browser.get("/projects?q=&ministry=&phase=&rating=&budget_drift_min=&lang=en")
    assert form.status_code == 200 and _count(form.get_data(as_text=True)) == "1–2 of 2 projects"
    drifting = browser.get("/projects?budget_drift_min=10").get_data(as_text=True)
    assert _rows(drifting) == [paie]  # +50 %; the other has 0 %
    assert (
        _rows(browser.get("/projects?ministry=MJ&budget_drift_min=10").get_data(as_text=True)) == []
    )
    api = http.client.get("/api/projects?budget_drift_min=10&budget_drift_max=60").get_json()
    assert [item["id"] for item in api["items"]] == [paie]  # the API has the same filter
    uncosted = http.register(name="SI à chiffrer", ministry_code="MJ")
    by_cost = browser.get("/projects?sort=cost&order=desc").get_data(as_text=True)
    assert _rows(by_cost)[-1] == uncosted  # a missing figure comes last, even descending


def test_withheld_figures_are_shown_as_withheld(browser: FlaskClient, http: Http) -> None:
    project = http.register(name="SI secret", cost="4200000.00")
    assert http.command(project, "figures-withheld", {}).status_code == 201
    html = browser.get("/projects?lang=en").get_data(as_text=True)
    row = html[html.index(f'<tr data-project="{project}">') :].split("</tr>")[0]
    assert row.count(">withheld<") == 2  # cost and budget drift
    assert "4.20" not in row and "€0" not in row
    french = browser.get("/projects?lang=fr").get_data(as_text=True)
    assert ">non publié<" in french
    body = browser.get("/projects?format=csv").get_data().decode("utf-8-sig")
    (line,) = list(csv.DictReader(io.StringIO(body)))
    assert line["figures_withheld"] == "true" and line["cost"] == ""


def test_compare_defaults_to_the_previous_edition_and_today(
    browser: FlaskClient, http: Http
) -> None:
    project = http.register(name="SI paie", cost="1000000.00")
    assert http.command(project, "cost-estimates", {"amount": "1250000.00"}).status_code == 201
    html = browser.get("/compare?from=2024-02-01&to=2024-06-30&lang=en").get_data(as_text=True)
    assert '<del><span class="visually-hidden">before: </span>€1.00m</del>' in html
    assert '<ins><span class="visually-hidden">after: </span>€1.25m</ins>' in html
    assert f'href="/projects/{project}?as_of=2024-06-30&amp;lang=en#event-2"' in html
    no_edition = browser.get("/compare?lang=en").get_data(as_text=True)  # no edition: today
    assert "Changes from 30 June 2024 to 30 June 2024" in no_edition
    rows = browser.get("/compare?from=2024-01-01&to=2024-06-30&format=csv").get_data()
    kinds = [r["change"] for r in csv.DictReader(io.StringIO(rows.decode("utf-8-sig")))]
    assert kinds == ["entered"]  # registered on 15 January: it entered; no cost move before


def test_compare_caps_long_lists_and_says_how_many_more(
    browser: FlaskClient, http: Http, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.web import compare

    monkeypatch.setattr(compare, "CAP", 2)
    for n in range(3):
        http.register(name=f"SI {n}")
    html = browser.get("/compare?from=2024-01-01&to=2024-06-30&lang=en").get_data(as_text=True)
    entered = html[html.index('id="entered"') : html.index('id="left"')]
    assert entered.count("<tr data-project=") == 2
    assert "1 more not shown here" in entered
    assert 'data-count="entered" data-value="3"' in html


def test_compare_pages_a_long_list_with_its_cursor(
    browser: FlaskClient, http: Http, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.web import compare

    monkeypatch.setattr(compare, "CAP", 2)
    for n in range(3):
        http.register(name=f"SI {n}")
    html = browser.get("/compare?from=2024-01-01&to=2024-06-30&lang=en").get_data(as_text=True)
    entered = html[html.index('id="entered"') : html.index('id="left"')]
    assert "Changes 1 to 2 of 3." in entered
    found = re.search(r'<a rel="next" href="([^"]+)">Next 1</a>', entered)
    assert found is not None
    following = browser.get(found.group(1).replace("&amp;", "&")).get_data(as_text=True)
    rest = following[following.index('id="entered"') : following.index('id="left"')]
    assert rest.count("<tr data-project=") == 1 and ">SI 2</a>" in rest
    assert "Changes 3 to 3 of 3." in rest and "First page" in rest and 'rel="next"' not in rest
    french = browser.get(found.group(1).replace("&amp;", "&").replace("lang=en", "lang=fr"))
    assert "Changements 3 à 3 sur 3." in french.get_data(as_text=True)
    assert browser.get("/compare?from=2024-01-01&to=2024-06-30&cursor=zzz").status_code == 400
