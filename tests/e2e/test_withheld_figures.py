"""While a project's figures are withheld, no answer shows or counts its cost or schedule."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, Http

# Every figure of a project that reveals its cost or its schedule.
REVEALING = (
    "cost",
    "baseline_cost",
    "budget_drift_pct",
    "planned_end",
    "baseline_end",
    "schedule_drift_pct",
    "duration_years",
    "cv_pct",
    "sv_pct",
)
BUILD = "Conception / Réalisation"  # the panorama gives no duration in Cadrage
CLOSED_PORT_URL = "http://127.0.0.1:9/hook"  # discard port: nothing listens


@pytest.fixture
def services(settings: Settings, make_services: Callable[..., Services]) -> Services:
    settings = dataclasses.replace(settings, allow_loopback_webhooks=True)
    return make_services(settings, today=lambda: TODAY)


def _get(client: FlaskClient, path: str, **query: str) -> Any:
    response = client.get(path, query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _portfolio(http: Http) -> tuple[str, str]:
    """Two projects that slipped and overran; the second one's figures are then withheld."""
    shown = http.register(
        name="SI paie",
        cost="1000000.00",
        start_date="2022-01-01",
        planned_end="2024-01-01",
        phase=BUILD,
    )
    hidden = http.register(
        name="SIRHEN",
        cost="2000000.00",
        start_date="2020-01-01",
        planned_end="2026-01-01",
        phase=BUILD,
    )
    for pid, amount, end in ((shown, "1100000.00", "2024-07-01"), (hidden, "5000000.00", None)):
        assert http.command(pid, "cost-estimates", {"amount": amount}).status_code == 201
        if end:
            body = {"planned_end": end, "effective_date": "2024-03-02"}
            assert http.command(pid, "schedule-estimates", body).status_code == 201
    body = {"planned_end": "2029-01-01", "effective_date": "2024-03-02"}
    assert http.command(hidden, "schedule-estimates", body).status_code == 201
    body = {"effective_date": "2024-04-01", "narrative": "trajectory under review"}
    assert http.command(hidden, "figures-withheld", body).status_code == 201
    return shown, hidden


def test_a_withheld_project_shows_no_cost_or_schedule_figure_anywhere(
    http: Http, client: FlaskClient
) -> None:
    shown, hidden = _portfolio(http)
    state = _get(client, f"/api/projects/{hidden}", as_of="2024-05-01")
    assert state["figures_withheld"] is True
    assert {name: state[name] for name in REVEALING} == dict.fromkeys(REVEALING)
    assert state["start_date"] == "2020-01-01" and state["name"] == "SIRHEN"

    listed = _get(client, "/api/projects", as_of="2024-05-01")["items"]
    by_name = {p["name"]: p for p in listed}
    assert {name: by_name["SIRHEN"][name] for name in REVEALING} == dict.fromkeys(REVEALING)
    assert by_name["SI paie"]["duration_years"] == "2.50"

    response = client.get("/api/projects?as_of=2024-05-01&format=csv")
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(response.get_data(as_text=True)))}
    revealed = {k: v for k, v in rows["SIRHEN"].items() if k in REVEALING and v != ""}
    assert revealed == {} and rows["SI paie"]["planned_end"] == "2024-07-01"

    steps = _get(client, f"/api/projects/{hidden}/history", full="true")["steps"]
    last = steps[-1]
    assert last["event"]["type"] == "FiguresWithheld"
    assert {name: last["state"][name] for name in REVEALING} == dict.fromkeys(REVEALING)
    assert steps[-2]["state"]["planned_end"] == "2029-01-01"  # before it was withheld


def test_no_mean_or_total_counts_a_withheld_project(http: Http, client: FlaskClient) -> None:
    _portfolio(http)
    before = _get(client, "/api/portfolio/summary", as_of="2024-03-15")
    withheld = _get(client, "/api/portfolio/summary", as_of="2024-05-01")
    assert before["mean_duration_years"] == "5.75"  # (912 + 3288 days) / 2 / 365
    assert withheld["projects"] == 2  # still followed
    assert withheld["costed_projects"] == 1 and withheld["total_cost"] == "1100000.00"
    # Only SI paie's figures: 2.5 years; 182 days late over 730 planned; 10 % over budget.
    assert withheld["mean_duration_years"] == "2.50"
    for kind in ("mean", "median", "weighted"):
        assert withheld[f"{kind}_schedule_drift_pct"] == "24.93"
        assert withheld[f"{kind}_budget_drift_pct"] == "10.00"
    assert withheld["by_ministry"]["MINARM"]["mean_duration_years"] == "2.50"
    response = client.get("/api/portfolio/summary?as_of=2024-05-01&format=csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    ministry = next(r for r in rows if r["scope"] == "ministry" and r["key"] == "MINARM")
    assert (ministry["median_schedule_drift_pct"], ministry["weighted_budget_drift_pct"]) == (
        "24.93",
        "10.00",
    )

    changes = _get(client, "/api/portfolio/changes", **{"from": "2024-02-01", "to": "2024-05-01"})
    assert [c["name"] for c in changes["schedule_changes"]] == ["SI paie"]
    assert [c["name"] for c in changes["cost_changes"]] == ["SI paie"]


def test_disclosure_shows_the_kept_figures_again(http: Http, client: FlaskClient) -> None:
    _, hidden = _portfolio(http)
    body = {"effective_date": "2024-06-01", "narrative": "published again"}
    assert http.command(hidden, "figures-disclosed", body).status_code == 201
    state = _get(client, f"/api/projects/{hidden}", as_of="2024-06-15")
    assert (state["cost"], state["planned_end"], state["duration_years"]) == (
        "5000000.00",
        "2029-01-01",
        "9.01",
    )
    assert _get(client, "/api/portfolio/summary", as_of="2024-06-15")["mean_duration_years"] == (
        "5.75"
    )


def test_a_schedule_rule_does_not_fire_on_a_withheld_slip(http: Http, client: FlaskClient) -> None:
    pid = http.register(cost="1000000.00", start_date="2022-01-01", planned_end="2024-01-01")
    rule = {
        "metric": "schedule_drift_pct",
        "comparator": ">",
        "threshold": "20",
        "scope": "project",
        "scope_value": pid,
        "channel": "webhook",
        "url": CLOSED_PORT_URL,
    }
    assert client.post("/api/subscriptions", json=rule).status_code == 201
    body = {"effective_date": "2024-02-01", "narrative": "call for tenders"}
    assert http.command(pid, "figures-withheld", body).status_code == 201
    body = {"planned_end": "2026-01-01", "effective_date": "2024-03-02"}
    assert http.command(pid, "schedule-estimates", body).status_code == 201
    assert _get(client, "/api/alerts") == []
    assert http.command(pid, "figures-disclosed", {}).status_code == 201
    raised = _get(client, "/api/alerts")
    assert [(a["kind"], a["value_after"]) for a in raised] == [("raised", "100.14")]
