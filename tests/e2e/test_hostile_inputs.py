"""Inputs a hostile tester sent that used to end in a 500: each is a 4xx naming the field."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.e2e.conftest import Http, assert_problem

# Valid ISO 8601 timestamps that leave years 1 to 9999 once moved to UTC.
OUT_OF_RANGE = ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00")
READS = (
    "/api/projects",
    "/api/projects?format=csv",
    "/api/projects/{pid}",
    "/api/projects/{pid}/history",
    "/api/portfolio/summary",
    "/api/portfolio/summary?format=csv",
    "/api/portfolio/changes?from=2024-01-01&to=2024-06-01",
)
EMAIL_RULE = {
    "metric": "budget_drift_pct",
    "comparator": ">",
    "threshold": "20",
    "scope": "portfolio",
    "channel": "email",
    "email": "owner@example.org",
}


@pytest.mark.parametrize("known_at", OUT_OF_RANGE)
def test_a_known_at_out_of_range_in_utc_is_a_422_on_every_read(
    http: Http, app: Flask, client: FlaskClient, known_at: str
) -> None:
    pid = http.register()
    for path in READS:
        url = path.format(pid=pid) + ("&" if "?" in path else "?") + "known_at=" + quote(known_at)
        assert_problem(client.get(url), 422, "known_at")
        anonymous = app.test_client().get(url)  # known_at is an audit read: refused first
        assert anonymous.status_code == 401 and anonymous.mimetype == "application/problem+json"


@pytest.mark.parametrize("name", ["from", "to"])
@pytest.mark.parametrize("moment", OUT_OF_RANGE)
def test_alerts_between_times_out_of_range_is_a_422(
    client: FlaskClient, name: str, moment: str
) -> None:
    assert_problem(client.get("/api/alerts", query_string={name: moment}), 422, name)


def test_the_extremes_that_exist_in_utc_still_answer(http: Http, client: FlaskClient) -> None:
    pid = http.register()
    for known_at in ("9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-14:00"):
        response = client.get(f"/api/projects/{pid}", query_string={"known_at": known_at})
        assert response.status_code in (200, 404), response.get_data(as_text=True)
    latest = client.get(f"/api/projects/{pid}?known_at=9999-12-31T23:59:59%2B14:00").get_json()
    assert latest["known_at"] == "9999-12-31T09:59:59+00:00" and latest["name"] == "SI paie"
    assert client.get("/api/projects?as_of=9999-12-31").get_json()["total"] == 1
    changes = client.get("/api/portfolio/changes?from=0001-01-01&to=9999-12-31").get_json()
    assert [c["id"] for c in changes["entered"]] == [pid]
    assert client.get("/api/alerts?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z").json == []


def _subscription(client: FlaskClient) -> str:
    created = client.post("/api/subscriptions", json=EMAIL_RULE)
    assert created.status_code == 201, created.get_json()
    sid: str = created.get_json()["id"]
    return sid


NESTED = "[" * 1000 + "]" * 1000


@pytest.mark.parametrize("method", ["patch", "delete"])
@pytest.mark.parametrize(
    "body",
    [NESTED, '{"threshold": ' + NESTED + "}", "[" * 100_000 + "]" * 100_000],
    ids=["1000-arrays", "1000-arrays-in-a-field", "100000-arrays"],
)
def test_a_deeply_nested_body_is_a_400_whatever_the_method(
    client: FlaskClient, method: str, body: str
) -> None:
    sid = _subscription(client)
    send = getattr(client, method)
    response = send(f"/api/subscriptions/{sid}", data=body, content_type="application/json")
    assert_problem(response, 400, "body")
    still = client.get(f"/api/subscriptions/{sid}")
    assert still.status_code == 200 and still.get_json()["rule"]["threshold"] == "20"


def test_a_patch_that_is_not_json_is_unsupported(client: FlaskClient) -> None:
    sid = _subscription(client)
    response = client.patch(f"/api/subscriptions/{sid}", data="threshold=5")
    assert_problem(response, 415, "Content-Type")
    assert client.delete(f"/api/subscriptions/{sid}").status_code == 200  # no body: no check


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"threshold": "1e999999999"}, "threshold"),
        ({"threshold": "-1E+1000000"}, "threshold"),
        ({"clear_threshold": "9e999999999"}, "clear_threshold"),
    ],
)
def test_a_threshold_with_a_huge_exponent_is_refused(
    client: FlaskClient, fields: dict[str, Any], field: str
) -> None:
    assert_problem(client.post("/api/subscriptions", json=EMAIL_RULE | fields), 422, field)
    sid = _subscription(client)
    assert_problem(client.patch(f"/api/subscriptions/{sid}", json=fields), 422, field)
