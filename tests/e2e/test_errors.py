"""Every refusal is application/problem+json, names the offending field, and is never a 500."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from service.app import create_app
from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, Http, assert_problem, authorize, make_token

INVALID_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("cost-estimates", {"amount": "1.005"}, "amount"),
    ("cost-estimates", {"amount": 12.5}, "amount"),
    ("cost-estimates", {"amount": "NaN"}, "amount"),
    ("cost-estimates", {"amount": "Infinity"}, "amount"),
    ("cost-estimates", {"amount": "1e6"}, "amount"),
    ("cost-estimates", {"amount": "-5.00"}, "amount"),
    ("cost-estimates", {"amount": "0.00"}, "amount"),
    ("cost-estimates", {}, "amount"),
    ("cost-estimates", {"amount": "5.00", "effective_date": "2024-3-1"}, "effective_date"),
    ("cost-estimates", {"amount": "5.00", "effective_date": "2024-02-30"}, "effective_date"),
    ("cost-estimates", {"amount": "5.00", "effective_date": None}, "effective_date"),
    ("cost-estimates", {"amount": "5.00", "colour": "blue"}, "colour"),
    ("cost-estimates", {"amount": "5.00", "correction": "yes"}, "correction"),
    ("cost-estimates", {"amount": "5.00", "narrative": "bell\x07"}, "narrative"),
    ("cost-estimates", {"amount": "5.00", "narrative": "x" * 10_001}, "narrative"),
    ("cost-estimates", {"amount": "5.00", "narrative": "lone \ud800"}, "narrative"),
    ("cost-estimates", {"amount": "5.00", "source": "nul\x00"}, "source"),
    ("phase-transitions", {"phase": "Pilotage"}, "phase"),
    ("status-reports", {"rating": "Purple"}, "rating"),
    ("closure", {"outcome": "merged"}, "outcome"),
    ("rebaselines", {"approver": "DINUM", "reason": "x"}, "baseline_cost"),
    ("rebaselines", {"baseline_end": "2026-01-01", "approver": " ", "reason": "x"}, "approver"),
    ("details-revisions", {"name": "A\nB"}, "name"),
    ("details-revisions", {"name": "x" * 301}, "name"),
    ("details-revisions", {"programmes": ["175", 224]}, "programmes.1"),
    ("details-revisions", {}, "body"),
]


@pytest.mark.parametrize(("resource", "body", "field"), INVALID_BODIES)
def test_an_invalid_body_is_refused_naming_the_field(
    http: Http, resource: str, body: dict[str, Any], field: str
) -> None:
    project = http.register()
    problem = assert_problem(http.command(project, resource, body), 422, field)
    assert field in problem["errors"]
    assert all(isinstance(m, str) for m in problem["errors"][field])
    assert len(http.events(project)) == 1


def test_a_body_that_is_not_an_object_is_refused(http: Http) -> None:
    project = http.register()
    response = http.post(f"/api/projects/{project}/status-reports", ["Green"])
    assert_problem(response, 422, "body")


def test_registration_needs_a_name_and_a_ministry(http: Http) -> None:
    response = http.post("/api/projects", {"effective_date": "2024-01-15", "ministry_code": "SPM"})
    problem = assert_problem(response, 422, "name")
    assert problem["errors"]["name"] == ["Missing data for required field."]


def test_malformed_json_is_a_bad_request(http: Http) -> None:
    response = http.client.post("/api/projects", data="{", content_type="application/json")
    assert_problem(response, 400, "body")


def test_deeply_nested_json_is_a_bad_request_not_a_crash(http: Http) -> None:
    body = "[" * 100_000 + "]" * 100_000
    response = http.client.post("/api/projects", data=body, content_type="application/json")
    assert_problem(response, 400, "body")


def test_a_number_too_long_to_parse_is_a_bad_request(http: Http) -> None:
    body = '{"amount": ' + "9" * 5000 + "}"
    response = http.client.post("/api/projects", data=body, content_type="application/json")
    assert_problem(response, 400, "body")


def test_a_body_that_is_not_json_is_unsupported(http: Http) -> None:
    response = http.client.post("/api/projects", data={"name": "x"})
    assert_problem(response, 415, "Content-Type")


def test_an_unknown_route_is_a_problem(http: Http) -> None:
    assert_problem(http.client.get("/api/nowhere"), 404)


def test_a_wrong_method_is_a_problem_that_says_what_is_allowed(http: Http) -> None:
    response = http.client.delete("/api/projects")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_a_domain_refusal_carries_its_rule_as_type_and_title(http: Http) -> None:
    project = http.register()
    response = http.command(project, "status-reports", {"rating": "Red"})
    problem = assert_problem(response, 409, "narrative")
    assert problem["type"] == "urn:panorama:problem:narrative-required"
    assert problem["title"] == "Narrative required"


def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing(
    http: Http, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = http.register()

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("password=hunter2 at /srv/secret.py")

    monkeypatch.setattr(services.portfolio, "report_status", crash)
    response = http.command(project, "status-reports", {"rating": "Green"})
    assert_problem(response, 500)
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "secret" not in text and "Traceback" not in text


def test_a_body_over_the_size_limit_is_refused(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    small = dataclasses.replace(settings, max_body_bytes=2_000)
    services = make_services(small, today=lambda: TODAY)
    client = authorize(create_app(services).test_client(), make_token(services))
    body = {"name": "x", "ministry_code": "SPM", "effective_date": "2024-01-15"}
    response = client.post("/api/projects", json=body | {"description": "d" * 3_000})
    assert_problem(response, 413)
    assert client.post("/api/projects", json=body).status_code == 201
