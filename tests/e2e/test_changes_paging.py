"""Paging the changes between two dates: limits, cursors, counts, refusals."""

from __future__ import annotations

import base64
import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.e2e.conftest import Http, assert_problem

WINDOW = "/api/portfolio/changes?from=2024-01-01&to=2024-06-01"


def _get(client: FlaskClient, query: str) -> dict[str, Any]:
    response = client.get(f"{WINDOW}&{query}" if query else WINDOW)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _register(http: Http, *names: str) -> dict[str, str]:
    return {name: http.register(name=name) for name in names}


def test_a_small_limit_pages_one_kind_with_cursors_and_counts_say_how_many(
    http: Http, client: FlaskClient
) -> None:
    ids = _register(http, "Charlie", "alpha", "Bravo")
    first = _get(client, "limit=2")
    assert first["limit"] == 2
    assert first["counts"] == {
        "entered": 3,
        "left": 0,
        "phase_changes": 0,
        "cost_changes": 0,
        "schedule_changes": 0,
    }
    assert [c["name"] for c in first["entered"]] == ["alpha", "Bravo"]  # by name, any case
    assert first["next"]["entered"] is not None and first["next"]["left"] is None
    second = _get(client, f"limit=2&cursor={first['next']['entered']}")
    assert [c["id"] for c in second["entered"]] == [ids["Charlie"]]
    assert second["next"] == {"entered": None}
    assert "left" not in second and "cost_changes" not in second  # the cursor's kind only
    assert second["counts"] == first["counts"]


def test_a_cursor_does_not_repeat_or_skip_when_a_project_enters_meanwhile(
    http: Http, client: FlaskClient
) -> None:
    _register(http, "B", "D")
    first = _get(client, "limit=1")
    assert [c["name"] for c in first["entered"]] == ["B"]
    _register(http, "A", "C")  # one before the cursor, one after it
    rest = _get(client, f"limit=10&cursor={first['next']['entered']}")
    assert [c["name"] for c in rest["entered"]] == ["C", "D"]
    assert rest["counts"]["entered"] == 4


def test_kind_gives_one_list_and_the_default_limit_is_100(http: Http, client: FlaskClient) -> None:
    _register(http, "Solo")
    body = _get(client, "kind=entered")
    assert body["limit"] == 100
    assert [c["name"] for c in body["entered"]] == ["Solo"]
    assert "phase_changes" not in body and body["next"] == {"entered": None}


def test_downloads_hold_every_change_whatever_the_limit(http: Http, client: FlaskClient) -> None:
    _register(http, "One", "Two", "Three")
    response = client.get(f"{WINDOW}&format=csv&limit=1")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sorted(r["name"] for r in rows) == ["One", "Three", "Two"]
    assert {r["events"].split("@")[0] for r in rows} == {"Registered"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("kind=everything", "kind"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=" + "A" * 2001, "cursor"),
        ("cursor=" + base64.urlsafe_b64encode(b"[" * 1400).decode(), "cursor"),
        ("cursor=" + base64.urlsafe_b64encode(b'["entered", 1, 2]').decode(), "cursor"),
    ],
)
def test_bad_paging_parameters_are_refused_naming_the_field(
    client: FlaskClient, query: str, field: str
) -> None:
    assert_problem(client.get(f"{WINDOW}&{query}"), 422, field)


def test_a_cursor_of_one_kind_with_another_kind_is_refused(http: Http, client: FlaskClient) -> None:
    _register(http, "X", "Y")
    cursor = _get(client, "limit=1")["next"]["entered"]
    assert_problem(client.get(f"{WINDOW}&kind=left&cursor={cursor}"), 422, "cursor")


def test_known_at_leaves_out_the_events_recorded_later(http: Http, client: FlaskClient) -> None:
    pid = http.register(name="Paie", cost="1000000.00")
    body = {"amount": "1200000.00", "effective_date": "2024-03-01"}
    assert http.command(pid, "cost-estimates", body).status_code == 201
    between = datetime.now(UTC)
    body = {"amount": "1300000.00", "effective_date": "2024-04-01"}
    assert http.command(pid, "cost-estimates", body).status_code == 201
    window = {"from": "2024-02-01", "to": "2024-06-01"}
    now = client.get("/api/portfolio/changes", query_string=window).get_json()
    (cost,) = now["cost_changes"]
    assert cost["to"] == "1300000.00" and [e["version"] for e in cost["events"]] == [2, 3]
    window["known_at"] = between.isoformat()
    then = client.get("/api/portfolio/changes", query_string=window).get_json()
    (cost,) = then["cost_changes"]
    assert cost["to"] == "1200000.00" and [e["version"] for e in cost["events"]] == [2]


def test_a_withheld_cost_is_no_change_even_when_the_phase_moves(
    http: Http, client: FlaskClient
) -> None:
    pid = http.register(name="Secret", cost="1000000.00")
    body = {"phase": "Déploiement", "effective_date": "2024-03-01"}
    assert http.command(pid, "phase-transitions", body).status_code == 201
    body = {"effective_date": "2024-03-15", "narrative": "call for tenders"}
    assert http.command(pid, "figures-withheld", body).status_code == 201
    body = {"amount": "1500000.00", "effective_date": "2024-04-01"}
    assert http.command(pid, "cost-estimates", body).status_code == 201
    window = {"from": "2024-02-01", "to": "2024-06-01"}
    body = client.get("/api/portfolio/changes", query_string=window).get_json()
    assert [c["id"] for c in body["phase_changes"]] == [pid]
    assert body["cost_changes"] == [] and body["counts"]["cost_changes"] == 0
