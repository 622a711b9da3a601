"""The query API end to end: commands, then reads as of a date and as known at a time."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime

from flask.testing import FlaskClient

from domain.application import Provenance
from service.bootstrap import Services
from tests.e2e.conftest import Http, assert_problem


def _walk(http: Http) -> str:
    pid = http.register(
        cost="1000000.00", start_date="2023-01-01", planned_end="2025-01-01", interministerial=True
    )
    assert http.command(pid, "cost-estimates", {"amount": "1200000.00"}).status_code == 201
    body = {"phase": "Déploiement", "effective_date": "2024-04-01"}
    assert http.command(pid, "phase-transitions", body).status_code == 201
    body = {"planned_end": "2025-07-01", "effective_date": "2024-05-01"}
    assert http.command(pid, "schedule-estimates", body).status_code == 201
    return pid


def test_a_write_is_readable_with_min_position(http: Http, client: FlaskClient) -> None:
    pid = http.register(cost="500000.00")
    response = http.command(pid, "cost-estimates", {"amount": "750000.00"})
    position = response.get_json()["position"]
    read = client.get(f"/api/projects/{pid}?min_position={position}")
    assert read.status_code == 200
    body = read.get_json()
    assert body["cost"] == "750000.00"
    assert body["position"] >= position
    assert body["version"] == 2


def test_a_project_as_of_a_date_shows_what_was_true_then(http: Http, client: FlaskClient) -> None:
    pid = _walk(http)
    before = client.get(f"/api/projects/{pid}?as_of=2024-02-01").get_json()
    assert before["cost"] == "1000000.00" and before["phase"] == "Cadrage"
    assert before["as_of"] == "2024-02-01"
    now = client.get(f"/api/projects/{pid}?as_of=2024-06-01").get_json()
    assert now["cost"] == "1200000.00"
    assert now["baseline_cost"] == "1000000.00"
    assert now["budget_drift_pct"] == "20.00"
    assert now["phase"] == "Déploiement"
    assert now["planned_end"] == "2025-07-01"
    # (2025-07-01 − 2025-01-01) / (2025-01-01 − 2023-01-01) = 181 / 731 days
    assert now["schedule_drift_pct"] == "24.76"
    assert now["cv_pct"] == "-20.00"


def test_a_late_correction_changes_as_of_now_but_not_what_was_known_before(
    http: Http, client: FlaskClient
) -> None:
    pid = _walk(http)
    known_before = datetime.now(UTC).isoformat()
    body = {"amount": "1100000.00", "effective_date": "2024-02-15", "narrative": "late figure"}
    assert http.command(pid, "cost-estimates", body).status_code == 201
    corrected = client.get(f"/api/projects/{pid}?as_of=2024-02-20").get_json()
    assert corrected["cost"] == "1100000.00"
    earlier = client.get(
        "/api/projects/" + pid, query_string={"as_of": "2024-02-20", "known_at": known_before}
    ).get_json()
    assert earlier["cost"] == "1000000.00"
    # the later re-estimate (1 March) still wins from its own date on
    assert client.get(f"/api/projects/{pid}?as_of=2024-03-02").get_json()["cost"] == "1200000.00"


def test_a_project_before_its_registration_is_a_404_naming_as_of(
    http: Http, client: FlaskClient
) -> None:
    pid = http.register()
    assert_problem(client.get(f"/api/projects/{pid}?as_of=2023-01-01"), 404, "as_of")
    assert_problem(client.get("/api/projects/not-a-uuid"), 404, "id")


def test_bad_query_arguments_are_422_naming_the_argument(client: FlaskClient) -> None:
    assert_problem(client.get("/api/portfolio/summary?as_of=2024-13-01"), 422, "as_of")
    assert_problem(client.get("/api/projects?sort=colour"), 422, "sort")
    assert_problem(client.get("/api/portfolio/changes?from=2024-05-01&to=2024-01-01"), 422, "from")


def test_min_position_beyond_the_log_is_refused_naming_it(client: FlaskClient) -> None:
    assert_problem(client.get("/api/portfolio/summary?min_position=999999"), 422, "min_position")


def test_a_lagging_read_model_answers_503_with_retry_after(
    client: FlaskClient, services: Services
) -> None:
    services.settings = replace(services.settings, min_position_wait_s=0.05)
    # recorded straight through the application: nothing catches the read model up
    result = services.portfolio.register_project(
        provenance=Provenance(date(2024, 1, 20), "tester"), name="Behind", ministry_code="MJ"
    )
    response = client.get(f"/api/portfolio/summary?min_position={result.position}")
    assert_problem(response, 503, "min_position")
    assert response.headers["Retry-After"] == "1"
    services.after_commit(result.position)
    assert client.get(f"/api/portfolio/summary?min_position={result.position}").status_code == 200


def test_the_summary_adds_up_the_portfolio(http: Http, client: FlaskClient) -> None:
    _walk(http)
    other = http.register(name="SI RH", ministry_code="MJ", cost="300000.00")
    assert http.command(other, "figures-withheld", {}).status_code == 201
    http.register(name="Cadrage only", ministry_code="MJ", cost="200000.00")
    summary = client.get("/api/portfolio/summary?as_of=2024-06-01").get_json()
    assert summary["projects"] == 3
    assert summary["costed_projects"] == 2  # withheld figures are not published
    assert summary["total_cost"] == "1400000.00"
    assert summary["total_cost_engaged"] == "1200000.00"  # Cadrage excluded
    assert summary["interministerial_projects"] == 1
    assert summary["by_ministry"]["MJ"]["projects"] == 2
    assert summary["by_phase"]["Déploiement"]["total_cost"] == "1200000.00"
    assert {"as_of", "known_at", "position"} <= set(summary)


def test_list_filters_sorts_and_paginates(http: Http, client: FlaskClient) -> None:
    for name, ministry in [("Bravo", "MJ"), ("Alpha", "MJ"), ("Charlie", "MEF")]:
        http.register(name=name, ministry_code=ministry)
    page = client.get("/api/projects?ministry=MJ&sort=-name&per_page=1&page=2").get_json()
    assert page["total"] == 2
    assert [p["name"] for p in page["items"]] == ["Alpha"]
    found = client.get("/api/projects?q=charl").get_json()
    assert [p["name"] for p in found["items"]] == ["Charlie"]


def test_csv_answers_carry_what_they_reflect(http: Http, client: FlaskClient) -> None:
    _walk(http)
    response = client.get("/api/projects?as_of=2024-06-01", headers={"Accept": "text/csv"})
    assert response.mimetype == "text/csv"
    assert response.headers["X-Panorama-As-Of"] == "2024-06-01"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0]["cost"] == "1200000.00" and rows[0]["phase"] == "Déploiement"
    summary = client.get("/api/portfolio/summary?as_of=2024-06-01&format=csv")
    lines = list(csv.reader(io.StringIO(summary.get_data(as_text=True))))
    assert lines[0][:3] == ["scope", "key", "projects"] and lines[1][:3] == ["portfolio", "", "1"]
    changes = client.get("/api/portfolio/changes?from=2024-02-01&to=2024-06-01&format=csv")
    kinds = [row["change"] for row in csv.DictReader(io.StringIO(changes.get_data(as_text=True)))]
    assert kinds == ["phase_changes", "cost_changes", "schedule_changes"]


def test_changes_between_two_dates_name_the_events_responsible(
    http: Http, client: FlaskClient
) -> None:
    pid = _walk(http)
    changes = client.get("/api/portfolio/changes?from=2024-01-01&to=2024-06-01").get_json()
    assert [c["id"] for c in changes["entered"]] == [pid]
    (phase,) = changes["phase_changes"] if changes["phase_changes"] else [None]
    assert phase is None  # not registered on 1 January: an entry, not a phase move
    later = client.get("/api/portfolio/changes?from=2024-02-01&to=2024-06-01").get_json()
    (move,) = later["phase_changes"]
    assert move["from"] == "Cadrage" and move["to"] == "Déploiement"
    assert [e["type"] for e in move["events"]] == ["PhaseTransitioned"]
    (cost,) = later["cost_changes"]
    assert cost["from"] == "1000000.00" and cost["to"] == "1200000.00"
    assert http.command(pid, "portfolio-exits", {"effective_date": "2024-06-10"}).status_code == 201
    gone = client.get("/api/portfolio/changes?from=2024-06-01&to=2024-06-20").get_json()
    assert [c["id"] for c in gone["left"]] == [pid]
    assert gone["left"][0]["events"][0]["type"] == "LeftPortfolio"


def test_history_shows_the_state_after_each_change(http: Http, client: FlaskClient) -> None:
    pid = _walk(http)
    history = client.get(f"/api/projects/{pid}/history?full=true").get_json()
    types = [step["event"]["type"] for step in history["steps"]]
    assert types == ["Registered", "CostReestimated", "PhaseTransitioned", "ScheduleReestimated"]
    assert history["steps"][1]["state"]["cost"] == "1200000.00"
    assert history["steps"][1]["state"]["phase"] == "Cadrage"
    assert history["steps"][2]["state"]["phase"] == "Déploiement"
