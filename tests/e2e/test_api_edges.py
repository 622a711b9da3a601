"""The query API's rough edges, smoothed: what a new user types is understood or refused by name."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from flask.testing import FlaskClient

from service.spreadsheet import XLSX_MIMETYPE
from tests.e2e.conftest import Http, assert_problem


def _project(http: Http) -> str:
    pid = http.register(cost="1000000.00", start_date="2023-01-01", planned_end="2025-01-01")
    assert http.command(pid, "cost-estimates", {"amount": "1200000.50"}).status_code == 201
    body = {"phase": "Déploiement", "effective_date": "2024-04-01"}
    assert http.command(pid, "phase-transitions", body).status_code == 201
    return pid


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects?ministri=MJ",
        "/api/projects/{pid}?asof=2024-01-01",
        "/api/projects/{pid}/history?ful=true",
        "/api/portfolio/summary?as_of=2024-06-01&know_at=2024-06-01",
        "/api/portfolio/changes?from=2024-01-01&to=2024-06-01&fromat=csv",
    ],
)
def test_an_unknown_query_parameter_is_400_naming_it(
    http: Http, client: FlaskClient, path: str
) -> None:
    pid = _project(http)
    response = client.get(path.format(pid=pid))
    problem = assert_problem(response, 400)
    unknown = path.split("&")[-1].split("?")[-1].split("=")[0]
    assert problem["field"] == unknown
    assert unknown in problem["detail"]


def test_every_unknown_parameter_is_named(client: FlaskClient) -> None:
    problem = assert_problem(client.get("/api/projects?zeta=1&alpha=2&ministry=MJ"), 400, "alpha")
    assert sorted(problem["errors"]) == ["alpha", "zeta"]


@pytest.mark.parametrize(
    "path", ["/api/projects/{pid}/events", "/api/editions", "/api/subscriptions"]
)
def test_an_endpoint_without_query_parameters_refuses_any(
    http: Http, client: FlaskClient, path: str
) -> None:
    pid = _project(http)
    problem = assert_problem(client.get(path.format(pid=pid) + "?as_of=2024-01-01"), 400)
    assert problem["field"] == "as_of" and "as_of" in problem["detail"]
    assert client.get(path.format(pid=pid)).status_code == 200


def test_filters_on_codes_ignore_case(http: Http, client: FlaskClient) -> None:
    pid = _project(http)  # ministry MINARM, phase Déploiement
    for query in ("ministry=minarm", "ministry=MinArm", "phase=déploiement", "phase=DÉPLOIEMENT"):
        items = client.get(f"/api/projects?{query}").get_json()["items"]
        assert [i["id"] for i in items] == [pid], query
    assert client.get("/api/projects?phase=cadrage").get_json()["items"] == []


def test_known_at_accepts_a_bare_date_meaning_the_end_of_that_day(
    http: Http, client: FlaskClient
) -> None:
    pid = _project(http)
    today = datetime.now(UTC).date()
    answer = client.get(f"/api/projects/{pid}?as_of=2024-06-30&known_at={today}")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["known_at"].startswith(f"{today}T23:59:59.999999")
    assert answer.get_json()["cost"] == "1200000.50"
    yesterday = today - timedelta(days=1)
    before = client.get(f"/api/projects/{pid}?as_of=2024-06-30&known_at={yesterday}")
    assert_problem(before, 404, "known_at")
    summary = client.get(f"/api/portfolio/summary?as_of=2024-06-30&known_at={today}")
    assert summary.get_json()["projects"] == 1


def test_a_404_names_known_at_when_it_is_the_cause(http: Http, client: FlaskClient) -> None:
    pid = _project(http)
    long_ago = "2020-01-01T00:00:00Z"
    problem = assert_problem(
        client.get(f"/api/projects/{pid}?as_of=2024-06-30&known_at={long_ago}"), 404, "known_at"
    )
    assert "known_at" in problem["detail"] or "recorded" in problem["detail"]
    before = client.get(f"/api/projects/{pid}?as_of=2023-12-01")
    assert_problem(before, 404, "as_of")


def _rows(body: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body), delimiter=delimiter))


def test_format_csv_works_on_a_project_and_its_history(http: Http, client: FlaskClient) -> None:
    pid = _project(http)
    one = client.get(f"/api/projects/{pid}?as_of=2024-06-30&format=csv")
    assert one.mimetype == "text/csv"
    (row,) = _rows(one.get_data(as_text=True))
    assert row["id"] == pid and row["cost"] == "1200000.50" and row["currency"] == "EUR"
    assert row["duration_years"] == "2.00" and row["ministry_code"] == "MINARM"
    assert "ministry_name" in row
    assert len(one.headers["X-Panorama-Chain-Head"]) == 64
    history = client.get(f"/api/projects/{pid}/history", headers={"Accept": "text/csv"})
    assert history.mimetype == "text/csv"
    changes = _rows(history.get_data(as_text=True))
    cost = [r for r in changes if r["type"] == "CostReestimated"]
    assert [(r["field"], r["old"], r["new"]) for r in cost] == [
        ("cost", "1000000.00", "1200000.50"),
        ("budget_drift_pct", "0.00", "20.00"),
        ("cv_pct", "0.00", "-20.00"),
    ]
    full = client.get(f"/api/projects/{pid}/history?format=csv&full=true")
    states = _rows(full.get_data(as_text=True))
    assert [s["state_phase"] for s in states] == ["Cadrage", "Cadrage", "Déploiement"]


def test_the_excel_fr_dialect_has_a_bom_semicolons_and_decimal_commas(
    http: Http, client: FlaskClient
) -> None:
    pid = _project(http)
    response = client.get("/api/projects?as_of=2024-06-30&format=csv&dialect=excel-fr")
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    (row,) = _rows(body.decode("utf-8-sig"), delimiter=";")
    assert row["id"] == pid
    assert row["cost"] == "1200000,50"
    assert row["budget_drift_pct"] == "20,00"
    assert row["phase"] == "Déploiement"


def test_the_xlsx_media_type_gives_a_workbook_with_typed_cells(
    http: Http, client: FlaskClient
) -> None:
    pid = _project(http)
    response = client.get("/api/projects?as_of=2024-06-30", headers={"Accept": XLSX_MIMETYPE})
    assert response.status_code == 200 and response.mimetype == XLSX_MIMETYPE
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data())).active
    assert sheet is not None
    header, *rows = list(sheet.iter_rows(values_only=True))
    (row,) = [dict(zip(header, r, strict=True)) for r in rows]
    assert row["id"] == pid and row["currency"] == "EUR"
    assert float(row["cost"]) == 1200000.5  # a number, not text
    summary = client.get("/api/portfolio/summary?as_of=2024-06-30&format=xlsx")
    assert summary.mimetype == XLSX_MIMETYPE


def test_history_lists_what_changed_at_each_step(http: Http, client: FlaskClient) -> None:
    pid = _project(http)
    history = client.get(f"/api/projects/{pid}/history").get_json()
    steps = history["steps"]
    assert [s["event"]["type"] for s in steps] == [
        "Registered",
        "CostReestimated",
        "PhaseTransitioned",
    ]
    assert all("state" not in s for s in steps)
    phase = {c["field"]: (c["old"], c["new"]) for c in steps[2]["changes"]}
    assert phase == {"phase": ("Cadrage", "Déploiement")}
    assert steps[2]["event"]["effective_date"] == "2024-04-01"
    assert steps[2]["event"]["recorded_at"]
    registered = {c["field"]: c["new"] for c in steps[0]["changes"]}
    assert registered["name"] == "SI paie" and registered["cost"] == "1000000.00"
    full = client.get(f"/api/projects/{pid}/history?full=true").get_json()
    assert full["steps"][2]["state"]["phase"] == "Déploiement"
