"""Subscriptions over HTTP: ownership, refusals naming the field, one alert per crossing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, Http, assert_problem, bearer, make_token

CLOSED_PORT_URL = "http://127.0.0.1:9/hook"  # discard port: nothing listens, refused at once


@pytest.fixture
def services(settings: Settings, make_services: Callable[..., Services]) -> Services:
    settings = dataclasses.replace(settings, allow_loopback_webhooks=True)
    return make_services(settings, today=lambda: TODAY)


def rule(**fields: Any) -> dict[str, Any]:
    body = {
        "metric": "budget_drift_pct",
        "comparator": ">",
        "threshold": "20",
        "scope": "portfolio",
        "channel": "webhook",
        "url": CLOSED_PORT_URL,
    }
    return {k: v for k, v in (body | fields).items() if v is not None}


def alerts(client: FlaskClient, **query: str) -> list[dict[str, Any]]:
    response = client.get("/api/alerts", query_string=query)
    assert response.status_code == 200, response.get_json()
    found: list[dict[str, Any]] = response.get_json()
    return found


def test_a_subscriber_sees_and_manages_only_its_own(
    app: Flask, services: Services, client: FlaskClient
) -> None:
    alice, bob = make_token(services, "subscriber"), make_token(services, "subscriber")
    anon = app.test_client()
    created = anon.post("/api/subscriptions", json=rule(), headers=bearer(alice))
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["secret"].startswith("whsec_") and body["rule"]["threshold"] == "20"
    sid = body["id"]
    mine = anon.get(f"/api/subscriptions/{sid}", headers=bearer(alice))
    assert mine.status_code == 200 and "secret" not in mine.get_json()
    assert body["secret"] not in mine.get_data(as_text=True)
    for method in ("get", "patch", "delete"):
        kwargs: dict[str, Any] = {"json": {"threshold": "30"}} if method == "patch" else {}
        response = getattr(anon, method)(f"/api/subscriptions/{sid}", headers=bearer(bob), **kwargs)
        assert_problem(response, 404)
    assert anon.get("/api/subscriptions", headers=bearer(bob)).get_json() == []
    listed = anon.get("/api/subscriptions", headers=bearer(alice)).get_json()
    assert [s["id"] for s in listed] == [sid] and "secret" not in listed[0]
    assert [s["id"] for s in client.get("/api/subscriptions").get_json()] == [sid]  # admin
    manager = make_token(services, "manager", "MINARM")
    assert_problem(anon.get("/api/subscriptions", headers=bearer(manager)), 403)
    changed = anon.patch(
        f"/api/subscriptions/{sid}", json={"threshold": "30"}, headers=bearer(alice)
    )
    assert changed.status_code == 200 and changed.get_json()["rule"]["threshold"] == "30"
    assert changed.get_json()["secret"] is None
    assert anon.delete(f"/api/subscriptions/{sid}", headers=bearer(alice)).status_code == 200
    assert_problem(anon.get(f"/api/subscriptions/{sid}", headers=bearer(alice)), 404)
    assert anon.get("/api/subscriptions", headers=bearer(alice)).get_json() == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"clear_threshold": "25"}, "clear_threshold"),
        ({"comparator": "<", "threshold": "-5", "clear_threshold": "-10"}, "clear_threshold"),
        ({"metric": "portfolio_total_cost_engaged", "scope": "project"}, "scope"),
        ({"scope": "project", "scope_value": "not-a-uuid"}, "scope_value"),
        ({"scope": "ministry"}, "scope_value"),
        ({"url": "ftp://example.org/hook"}, "url"),
        ({"url": "https://user:pw@example.org/hook"}, "url"),
        ({"url": None}, "url"),
        ({"threshold": "lots"}, "threshold"),
        ({"metric": "rating_at_or_worse", "comparator": None, "threshold": "Purple"}, "threshold"),
        ({"metric": "rating_at_or_worse", "comparator": "<", "threshold": "Red"}, "comparator"),
        ({"metric": "velocity"}, "metric"),
        ({"channel": "email", "email": "nobody"}, "email"),
        ({"secret": "short"}, "secret"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(
    client: FlaskClient, fields: dict[str, Any], field: str
) -> None:
    body = rule(**fields)
    if "url" in fields and fields["url"] is None:
        body.pop("url", None)
    assert_problem(client.post("/api/subscriptions", json=body), 422, field)
    assert client.get("/api/subscriptions").get_json() == []


def test_a_project_over_the_threshold_through_ten_re_estimates_raises_one_alert(
    http: Http, client: FlaskClient
) -> None:
    pid = http.register(cost="1000000.00")
    sub = client.post("/api/subscriptions", json=rule(scope="project", scope_value=pid))
    assert sub.status_code == 201, sub.get_json()
    assert alerts(client) == []
    for amount in range(1_300_000, 1_410_000, 10_000):  # 30 % over, then 11 re-estimates
        assert http.command(pid, "cost-estimates", {"amount": f"{amount}.00"}).status_code == 201
    raised = alerts(client)
    assert [(a["kind"], a["value_before"], a["value_after"]) for a in raised] == [
        ("raised", "0.00", "30.00")
    ]
    assert raised[0]["subject"] == pid and raised[0]["cause"]["type"] == "CostReestimated"
    assert http.command(pid, "cost-estimates", {"amount": "1100000.00"}).status_code == 201
    kinds = [a["kind"] for a in alerts(client, project=pid)]
    assert kinds == ["raised", "cleared"]
    assert alerts(client, subscription=sub.get_json()["id"]) == alerts(client)


def test_a_value_flapping_inside_the_hysteresis_band_raises_nothing_more(
    http: Http, client: FlaskClient
) -> None:
    pid = http.register(cost="100.00")
    sub = rule(scope="ministry", scope_value="MINARM", clear_threshold="10")
    assert client.post("/api/subscriptions", json=sub).status_code == 201
    for amount in ("112", "119", "111", "120", "115"):  # below 20 %: never raised
        http.command(pid, "cost-estimates", {"amount": amount})
    assert alerts(client) == []
    for amount in ("125", "115", "121", "111", "119", "130", "110.5"):  # in the band: held
        http.command(pid, "cost-estimates", {"amount": amount})
    assert [a["kind"] for a in alerts(client)] == ["raised"]
    http.command(pid, "cost-estimates", {"amount": "110"})  # at the clear threshold: cleared
    assert [a["kind"] for a in alerts(client)] == ["raised", "cleared"]


def test_a_portfolio_rule_follows_the_total_cost_engaged(http: Http, client: FlaskClient) -> None:
    body = rule(metric="portfolio_total_cost_engaged", threshold="1000", comparator=">=")
    assert client.post("/api/subscriptions", json=body).status_code == 201
    first = http.register(cost="600.00", phase="Déploiement")
    http.register(cost="500.00")  # in Cadrage: not engaged
    assert alerts(client) == []
    http.register(cost="400.00", phase="Déploiement")
    found = alerts(client)
    assert [(a["subject"], a["value_after"]) for a in found] == [("portfolio", "1000.00")]
    http.command(first, "portfolio-exits", {})
    assert [a["kind"] for a in alerts(client)] == ["raised", "cleared"]


def test_alerts_follow_the_latest_state_as_known_through_late_corrections(
    http: Http, client: FlaskClient
) -> None:
    pid = http.register(cost="100.00")
    assert client.post("/api/subscriptions", json=rule()).status_code == 201
    http.command(pid, "cost-estimates", {"amount": "110", "effective_date": "2024-04-01"})
    # a late estimate dated before the latest one does not change the latest state
    late = {"amount": "150", "effective_date": "2024-02-01"}
    assert http.command(pid, "cost-estimates", late).status_code == 201
    assert alerts(client) == []
    # a correction dated after it does: the alert follows what becomes known
    newer = {"amount": "150", "effective_date": "2024-05-01"}
    assert http.command(pid, "cost-estimates", newer).status_code == 201
    assert [(a["kind"], a["value_after"]) for a in alerts(client)] == [("raised", "50.00")]


def test_a_rating_rule_raises_at_or_worse_than_its_level(http: Http, client: FlaskClient) -> None:
    pid = http.register()
    body = rule(metric="rating_at_or_worse", comparator=None, threshold="Amber/Red")
    body |= {"clear_threshold": "Amber", "scope": "project", "scope_value": pid}
    created = client.post("/api/subscriptions", json=body)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["rule"]["clear_threshold"] == "Amber"
    for rating in ("Amber", "Amber/Red", "Amber", "Red", "Amber/Green"):
        report = {"rating": rating, "narrative": "weekly review"}
        assert http.command(pid, "status-reports", report).status_code == 201
    found = [(a["kind"], a["value_after"]) for a in alerts(client)]
    assert found == [("raised", "Amber/Red"), ("cleared", "Amber/Green")]


def test_if_match_makes_patch_and_delete_conditional_on_the_etag(client: FlaskClient) -> None:
    created = client.post("/api/subscriptions", json=rule())
    sid = created.get_json()["id"]
    got = client.get(f"/api/subscriptions/{sid}")
    etag = got.headers["ETag"]
    assert etag == f'"{got.get_json()["version"]}"'
    stale = {"If-Match": f'"{got.get_json()["version"] + 5}"'}
    path = f"/api/subscriptions/{sid}"
    assert_problem(client.patch(path, json={"threshold": "30"}, headers=stale), 412, "If-Match")
    assert_problem(client.delete(path, headers=stale), 412, "If-Match")
    bad = {"If-Match": "W/soon"}
    assert_problem(client.patch(path, json={"threshold": "30"}, headers=bad), 400, "If-Match")
    assert client.get(path).get_json()["rule"]["threshold"] == "20"  # nothing recorded
    changed = client.patch(path, json={"threshold": "30"}, headers={"If-Match": etag})
    assert changed.status_code == 200, changed.get_json()
    assert_problem(client.patch(path, json={"threshold": "35"}, headers={"If-Match": etag}), 412)
    fresh = client.get(path).headers["ETag"]
    assert fresh != etag
    assert client.delete(path, headers={"If-Match": fresh}).status_code == 200
    assert_problem(client.get(path), 404)
