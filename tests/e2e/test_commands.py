"""Commands over HTTP: what a project manager sees when recording changes."""

from __future__ import annotations

from typing import Any

import pytest

from service.bootstrap import Services
from tests.e2e.conftest import ADMIN, Http, assert_problem, make_token


def test_registering_a_project_answers_201_with_location_and_version(http: Http) -> None:
    response = http.post(
        "/api/projects",
        {
            "name": "Programme Vitam",
            "ministry_code": "MC",
            "ministry_name": "Ministère de la Culture",
            "cost": "1250000.50",
            "start_date": "2023-09-01",
            "planned_end": "2026-12-31",
            "programmes": ["175", "224"],
            "effective_date": "2024-01-15",
        },
    )
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/api/projects/{body['id']}"
    assert response.headers["ETag"] == '"1"'
    assert body["version"] == 1 and body["position"] >= 1
    [registered] = http.events(body["id"])
    assert registered["type"] == "Registered"
    assert registered["payload"]["cost"] == "1250000.50"
    assert registered["payload"]["phase"] == "Cadrage"
    assert registered["payload"]["programmes"] == ["175", "224"]


def test_a_project_walks_forward_through_its_phases(http: Http) -> None:
    project = http.register()
    phases = ["Conception / Réalisation", "Expérimentation", "Déploiement", "Terminé"]
    for version, phase in enumerate(phases, start=2):
        response = http.command(project, "phase-transitions", {"phase": phase})
        assert response.status_code == 201
        assert response.headers["ETag"] == f'"{version}"'
    moves = [e["payload"] for e in http.events(project)[1:]]
    assert [m["phase"] for m in moves] == phases
    assert [m["previous_phase"] for m in moves] == ["Cadrage", *phases[:-1]]


def test_a_forward_move_may_skip_phases(http: Http) -> None:
    project = http.register()
    response = http.command(project, "phase-transitions", {"phase": "Déploiement"})
    assert response.status_code == 201


def test_backward_move_without_narrative_is_refused(http: Http) -> None:
    project = http.register(phase="Déploiement")
    response = http.command(project, "phase-transitions", {"phase": "Cadrage"})
    problem = assert_problem(response, 409, "narrative")
    assert "narrative" in problem["detail"]
    assert len(http.events(project)) == 1


def test_backward_move_with_a_narrative_is_recorded(http: Http) -> None:
    project = http.register(phase="Déploiement")
    narrative = "Le pilote a échoué:\n\tretour en conception."
    body = {"phase": "Conception / Réalisation", "narrative": narrative}
    assert http.command(project, "phase-transitions", body).status_code == 201
    assert http.events(project)[-1]["narrative"] == narrative


def test_stale_if_match_is_refused_and_nothing_is_recorded(http: Http) -> None:
    project = http.register()
    first = http.command(project, "cost-estimates", {"amount": "10.00"}, if_match='"1"')
    assert first.status_code == 201
    response = http.command(project, "cost-estimates", {"amount": "20.00"}, if_match='"1"')
    assert_problem(response, 412, "If-Match")
    assert [e["payload"].get("amount") for e in http.events(project)] == [None, "10.00"]


def test_current_if_match_is_accepted_quoted_or_bare(http: Http) -> None:
    project = http.register()
    first = http.command(project, "cost-estimates", {"amount": "10.00"}, if_match='"1"')
    second = http.command(project, "cost-estimates", {"amount": "11.00"}, if_match="2")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["ETag"] == '"3"'


@pytest.mark.parametrize("if_match", ["abc", '"1', 'W/"1"', '"1", "2"', "-1"])
def test_malformed_if_match_is_a_bad_request(http: Http, if_match: str) -> None:
    project = http.register()
    response = http.command(project, "cost-estimates", {"amount": "10.00"}, if_match=if_match)
    assert_problem(response, 400, "If-Match")
    assert len(http.events(project)) == 1


COMMANDS: list[tuple[str, dict[str, Any], str]] = [
    ("cost-estimates", {"amount": "2500000.00"}, "CostReestimated"),
    ("schedule-estimates", {"planned_end": "2027-06-30"}, "ScheduleReestimated"),
    ("status-reports", {"rating": "Amber/Red"}, "StatusReported"),
    ("status-reports", {"rating": "Red", "narrative": "Retard de l'éditeur."}, "StatusReported"),
    (
        "rebaselines",
        {"baseline_cost": "3000000.00", "approver": "DINUM", "reason": "Périmètre élargi"},
        "Rebaselined",
    ),
    ("details-revisions", {"name": "SI paie v2", "links": ["https://x.fr"]}, "DetailsRevised"),
    ("figures-withheld", {}, "FiguresWithheld"),
    ("portfolio-exits", {}, "LeftPortfolio"),
    ("closure", {"outcome": "abandoned"}, "Closed"),
]


@pytest.mark.parametrize(("resource", "body", "event_type"), COMMANDS)
def test_each_command_records_its_event(
    http: Http, resource: str, body: dict[str, Any], event_type: str
) -> None:
    project = http.register()
    response = http.command(project, resource, body | {"source": "panorama:2024-03"})
    assert response.status_code == 201, response.get_json()
    last = http.events(project)[-1]
    assert last["type"] == event_type
    assert last["source"] == "panorama:2024-03"
    assert last["effective_date"] == "2024-03-01"


def test_figures_can_be_withheld_then_disclosed_and_the_project_can_leave_and_return(
    http: Http,
) -> None:
    project = http.register()
    for resource in (
        "figures-withheld",
        "figures-disclosed",
        "portfolio-exits",
        "portfolio-returns",
    ):
        assert http.command(project, resource, {}).status_code == 201
    assert assert_problem(http.command(project, "figures-disclosed", {}), 409)
    types = [e["type"] for e in http.events(project)]
    assert types[1:] == [
        "FiguresWithheld",
        "FiguresDisclosed",
        "LeftPortfolio",
        "RejoinedPortfolio",
    ]


def test_rebaseline_amounts_are_strings_in_the_audit_trail(http: Http) -> None:
    project = http.register(cost="100.00")
    body = {
        "baseline_cost": "120.5",
        "baseline_end": "2025-01-31",
        "approver": "CIN",
        "reason": "x",
    }
    assert http.command(project, "rebaselines", body).status_code == 201
    payload = http.events(project)[-1]["payload"]
    assert payload["baseline_cost"] == "120.50"
    assert payload["baseline_end"] == "2025-01-31"


def test_closed_project_accepts_only_a_reopening(http: Http) -> None:
    project = http.register()
    assert http.command(project, "closure", {"outcome": "completed"}).status_code == 201
    assert_problem(http.command(project, "cost-estimates", {"amount": "5.00"}), 409)
    assert_problem(http.command(project, "reopening", {}), 409, "narrative")
    reopened = http.command(project, "reopening", {"narrative": "Nouvelle phase du projet."})
    assert reopened.status_code == 201
    assert http.command(project, "cost-estimates", {"amount": "5.00"}).status_code == 201


def test_actor_is_the_name_of_the_bearer_token(http: Http, services: Services) -> None:
    project = http.register()
    token = make_token(services, "manager", "MINARM", name="cheffe.projet@minarm")
    http.command(project, "status-reports", {"rating": "Green"}, token=token)
    events = http.events(project)
    assert [e["actor"] for e in events] == [f"token:{ADMIN}", "token:cheffe.projet@minarm"]
    assert events[-1]["recorded_at"].endswith("+00:00")


def test_effective_date_in_the_future_is_refused(http: Http) -> None:
    project = http.register()
    response = http.command(
        project, "status-reports", {"rating": "Green", "effective_date": "2024-07-01"}
    )
    assert_problem(response, 409, "effective_date")


def test_effective_date_before_registration_needs_a_flagged_correction(http: Http) -> None:
    project = http.register()
    early = {"amount": "7.00", "effective_date": "2023-12-31"}
    assert_problem(http.command(project, "cost-estimates", early), 409, "effective_date")
    assert_problem(
        http.command(project, "cost-estimates", early | {"correction": True}), 409, "narrative"
    )
    corrected = early | {"correction": True, "narrative": "Chiffre de l'édition 2023."}
    assert http.command(project, "cost-estimates", corrected).status_code == 201
    assert http.events(project)[-1]["correction"] is True


def test_commands_on_an_unknown_project_are_not_found(http: Http) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert_problem(http.command(missing, "status-reports", {"rating": "Green"}), 404)
    assert_problem(http.client.get(f"/api/projects/{missing}/events"), 404)


def test_events_carry_the_current_version_as_etag(http: Http) -> None:
    project = http.register()
    http.command(project, "status-reports", {"rating": "Green"})
    assert http.client.get(f"/api/projects/{project}/events").headers["ETag"] == '"2"'


def test_each_successful_command_tells_the_projections_its_position(
    http: Http, services: Services
) -> None:
    positions: list[int] = []
    services.after_commit = positions.append
    start = services.portfolio.recorder.max_notification_id() or 0  # the reference data
    project = http.register()
    response = http.command(project, "status-reports", {"rating": "Green"})
    http.command(project, "status-reports", {"rating": "Purple"})
    assert positions == [start + 1, response.get_json()["position"]]


def test_a_failing_projection_trigger_does_not_fail_the_recorded_command(
    http: Http, services: Services
) -> None:
    def broken(position: int) -> None:
        raise ConnectionError("broker down")

    services.after_commit = broken
    project = http.register()
    assert http.command(project, "status-reports", {"rating": "Green"}).status_code == 201
    assert len(http.events(project)) == 2


# -- funding programmes ----------------------------------------------------------------------
def _programme(http: Http, envelope: str = "700000000.00", call: str | None = "AAP 2024") -> str:
    body = {"name": "FTAP", "envelope": envelope, "effective_date": "2024-01-01"}
    created = http.post("/api/funding-programmes", body)
    assert created.status_code == 201
    assert created.headers["Location"] == f"/api/funding-programmes/{created.get_json()['id']}"
    programme: str = created.get_json()["id"]
    if call is not None:
        opened = http.post(
            f"/api/funding-programmes/{programme}/calls",
            {"call": call, "effective_date": "2024-01-02"},
        )
        assert opened.status_code == 201
    return programme


def test_an_award_is_recorded_on_the_programme_and_the_project(http: Http) -> None:
    project = http.register()
    programme = _programme(http)
    body = {"project_id": project, "amount": "1500000.00", "call": "AAP 2024"}
    response = http.post(
        f"/api/funding-programmes/{programme}/awards",
        body | {"effective_date": "2024-02-01"},
        if_match='"2"',
    )
    assert response.status_code == 201, response.get_json()
    result = response.get_json()
    assert (result["version"], result["project_version"]) == (3, 2)
    state = http.client.get(f"/api/funding-programmes/{programme}").get_json()
    assert state["committed"] == {"amount": "1500000.00", "currency": "EUR", "kind": "announced"}
    assert state["available"]["amount"] == "698500000.00"
    assert [c["call"] for c in state["calls"]] == ["AAP 2024"]
    assert state["awards"] == [{"project_id": project, "amount": "1500000.00", "call": "AAP 2024"}]
    funding = http.events(project)[-1]
    assert funding["type"] == "FundingAwarded" and funding["payload"]["amount"] == "1500000.00"


def test_an_award_over_the_envelope_is_refused_and_nothing_is_recorded(http: Http) -> None:
    project = http.register()
    programme = _programme(http, envelope="1000.00")
    path = f"/api/funding-programmes/{programme}/awards"
    body = {"project_id": project, "amount": "600.00", "effective_date": "2024-02-01"}
    assert http.post(path, body).status_code == 201
    assert_problem(http.post(path, body), 409, "amount")
    assert (
        http.client.get(f"/api/funding-programmes/{programme}").get_json()["available"]["amount"]
        == "400.00"
    )
    assert len(http.events(project)) == 2


def test_an_award_in_a_call_that_is_not_open_is_refused(http: Http) -> None:
    project = http.register()
    programme = _programme(http)
    body = {
        "project_id": project,
        "amount": "1.00",
        "call": "AAP 2031",
        "effective_date": "2024-02-01",
    }
    assert_problem(http.post(f"/api/funding-programmes/{programme}/awards", body), 409, "call")
    assert len(http.events(project)) == 1


def test_an_award_to_an_unknown_project_names_the_project_id(http: Http) -> None:
    programme = _programme(http)
    body = {
        "project_id": "00000000-0000-4000-8000-000000000000",
        "amount": "1.00",
        "effective_date": "2024-02-01",
    }
    assert_problem(
        http.post(f"/api/funding-programmes/{programme}/awards", body), 422, "project_id"
    )


def test_opening_the_same_call_twice_is_refused(http: Http) -> None:
    programme = _programme(http, call="AAP 1")
    body = {"call": "AAP 1", "effective_date": "2024-02-01"}
    assert_problem(http.post(f"/api/funding-programmes/{programme}/calls", body), 409, "call")


def test_an_unknown_programme_is_not_found(http: Http) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert_problem(http.client.get(f"/api/funding-programmes/{missing}"), 404)
