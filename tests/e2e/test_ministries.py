"""Ministries as reference data, and the portfolio's one currency, through the API."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.bootstrap import ConfigurationError, Services
from service.config import Settings
from tests.e2e.conftest import Http, assert_problem, make_token


def _ministry(client: FlaskClient, code: str) -> dict[str, Any]:
    listed = client.get("/api/ministries").get_json()["items"]
    return next(m for m in listed if m["code"] == code)


def test_the_seeded_reference_lists_the_armees_under_one_stable_code(
    client: FlaskClient,
) -> None:
    client.environ_base.pop("HTTP_AUTHORIZATION", None)  # a public read
    armees = _ministry(client, "MINARM")
    assert armees["name"] == "Ministère des Armées"
    assert armees["aliases"] == [
        {"code": "MINDEF", "from": "2016-11-03", "to": "2017-02-01"},
        {"code": "MAR", "from": "2017-06-01", "to": None},
    ]
    assert client.get("/api/ministries/MAr").get_json()["code"] == "MINARM"
    assert {"MEN", "MAA", "MTES", "MC", "HMRC", "MOD"} <= {
        m["code"] for m in client.get("/api/ministries").get_json()["items"]
    }


def test_an_unknown_ministry_is_refused_until_an_admin_registers_it(
    http: Http, services: Services
) -> None:
    body = {"name": "Mon espace santé", "ministry_code": "MSS", "effective_date": "2024-01-15"}
    refused = assert_problem(http.post("/api/projects", body), 422, "ministry_code")
    assert "MSS" in refused["detail"]
    manager = make_token(services, "manager", "MSS", name="mss-manager")
    registration = {"code": "mss", "name": "Ministère de la Santé et de la Solidarité"}
    assert_problem(http.post("/api/ministries", registration, token=manager), 403)
    registered = http.post("/api/ministries", registration | {"aliases": [{"code": "MSSA"}]})
    assert registered.status_code == 201, registered.get_json()
    assert http.post("/api/projects", body | {"ministry_code": "mssa"}).status_code == 201
    taken = http.post("/api/ministries", {"code": "MSSA", "name": "Autre"})
    assert_problem(taken, 422, "code")


def test_an_admin_renames_a_ministry_and_adds_an_alias_in_one_amendment(http: Http) -> None:
    project = http.register(ministry_code="MJ")
    amendment = {
        "name": "Ministère de la Justice et des Libertés",
        "valid_from": "2024-02-01",
        "alias": {"code": "MJL", "from": "2024-02-01"},
    }
    amended = http.client.patch("/api/ministries/MJ", json=amendment)
    assert amended.status_code == 201, amended.get_json()
    justice = _ministry(http.client, "MJ")
    assert justice["name"] == amendment["name"]
    assert [n["name"] for n in justice["names"]] == ["Ministère de la Justice", amendment["name"]]
    assert http.client.get("/api/projects?ministry=mjl").get_json()["items"][0]["id"] == project
    summary = http.client.get(
        f"/api/portfolio/summary?min_position={amended.get_json()['position']}"
    )
    assert summary.get_json()["by_ministry"]["MJ"]["name"] == amendment["name"]
    assert_problem(http.client.patch("/api/ministries/MJL", json={"name": "x"}), 422, "code")


def test_a_manager_and_a_subscription_scoped_to_the_armees_cover_all_their_codes(
    http: Http, services: Services
) -> None:
    old = http.register(name="SOURCE SOLDE", ministry_code="MINDEF")
    new = http.register(name="SOURCE SOLDE 2", ministry_code="MAr")
    manager = make_token(services, "manager", "MAR", name="armees-manager")
    for project in (old, new):
        changed = http.command(project, "cost-estimates", {"amount": "10.00"}, token=manager)
        assert changed.status_code == 201, changed.get_json()
    rule = {
        "metric": "current_cost",
        "comparator": ">",
        "threshold": "5",
        "scope": "ministry",
        "scope_value": "mindef",
        "channel": "email",
        "email": "armees@example.org",
    }
    subscribed = http.post("/api/subscriptions", rule)
    assert subscribed.status_code == 201, subscribed.get_json()
    assert subscribed.get_json()["rule"]["scope_value"] == "MINARM"
    position = subscribed.get_json()["position"]
    alerts = http.client.get(f"/api/alerts?min_position={position}").get_json()
    assert sorted(a["subject"] for a in alerts) == sorted([old, new])
    listed = http.client.get("/api/projects?ministry=MINDEF").get_json()["items"]
    assert sorted(p["id"] for p in listed) == sorted([old, new])
    assert {p["published_ministry_code"] for p in listed} == {"MINDEF", "MAR"}


def test_every_answer_states_the_portfolio_currency(http: Http) -> None:
    project = http.register(cost="1000000.00")
    http.command(project, "cost-estimates", {"amount": "2000000.00"})
    for path in (
        "/api/portfolio/summary",
        "/api/projects",
        f"/api/projects/{project}",
        f"/api/projects/{project}/history",
        "/api/portfolio/changes?from=2024-01-01&to=2024-06-30",
    ):
        assert http.client.get(path).get_json()["currency"] == "EUR", path
    listed = http.client.get("/api/projects?format=csv")
    (row,) = csv.DictReader(io.StringIO(listed.get_data(as_text=True)))
    assert row["currency"] == "EUR"
    assert listed.headers["X-Panorama-Currency"] == "EUR"


def test_a_programme_refuses_an_award_in_another_currency(http: Http) -> None:
    project = http.register()
    body = {"name": "FTAP", "envelope": "700000000.00", "effective_date": "2024-01-01"}
    assert_problem(
        http.post("/api/funding-programmes", body | {"currency": "GBP"}), 422, "currency"
    )
    created = http.post("/api/funding-programmes", body)
    programme = created.get_json()["id"]
    assert http.client.get(f"/api/funding-programmes/{programme}").get_json()["currency"] == "EUR"
    award = {"project_id": project, "amount": "1500000.00", "effective_date": "2024-02-01"}
    path = f"/api/funding-programmes/{programme}/awards"
    assert_problem(http.post(path, award | {"currency": "GBP"}), 422, "currency")
    assert http.post(path, award | {"currency": "EUR"}).status_code == 201


def test_the_currency_is_recorded_once_and_a_later_start_in_another_is_refused(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    first = make_services(settings)
    assert first.portfolio.currency() == "EUR"
    first.close()
    with pytest.raises(ConfigurationError) as refused:
        make_services(replace(settings, currency="GBP"))
    assert "this portfolio is in EUR, not GBP" in str(refused.value)
    again = make_services(settings)  # the same setting starts, and records nothing more
    assert again.portfolio.currency() == "EUR"
