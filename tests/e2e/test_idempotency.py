"""Idempotency-Key: a retried command records once and gets the first answer again."""

from __future__ import annotations

import pytest
from flask import Flask

from service.bootstrap import Services
from service.idempotency import IdempotencyStore, fingerprint
from tests.e2e.conftest import ADMIN, Http, assert_problem, make_token


def test_a_replayed_key_returns_the_first_response_and_records_nothing(http: Http) -> None:
    project = http.register()
    body = {"amount": "42.00"}
    first = http.command(project, "cost-estimates", body, key="estimate-2024-03")
    again = http.command(project, "cost-estimates", body, key="estimate-2024-03")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["ETag"] == first.headers["ETag"] == '"2"'
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(http.events(project)) == 2


def test_a_retried_registration_creates_one_project(http: Http) -> None:
    body = {"name": "France Connect", "ministry_code": "PM", "effective_date": "2024-01-15"}
    first = http.post("/api/projects", body, key="register-fc")
    again = http.post("/api/projects", dict(reversed(body.items())), key="register-fc")
    assert again.status_code == 201
    assert again.headers["Location"] == first.headers["Location"]
    assert again.get_json()["id"] == first.get_json()["id"]


def test_the_same_key_with_a_different_body_is_refused(http: Http) -> None:
    project = http.register()
    http.command(project, "cost-estimates", {"amount": "42.00"}, key="k-1")
    response = http.command(project, "cost-estimates", {"amount": "43.00"}, key="k-1")
    assert_problem(response, 422, "Idempotency-Key")
    assert len(http.events(project)) == 2


def test_the_same_key_on_another_project_is_refused(http: Http) -> None:
    first, second = http.register(), http.register()
    http.command(first, "status-reports", {"rating": "Green"}, key="weekly")
    response = http.command(second, "status-reports", {"rating": "Green"}, key="weekly")
    assert_problem(response, 422, "Idempotency-Key")
    assert len(http.events(second)) == 1


def test_a_refusal_is_replayed_even_once_the_command_would_succeed(http: Http) -> None:
    project = http.register()
    http.command(project, "closure", {"outcome": "completed"})
    refused = http.command(project, "cost-estimates", {"amount": "5.00"}, key="late")
    assert_problem(refused, 409)
    http.command(project, "reopening", {"narrative": "Relance."})
    replayed = http.command(project, "cost-estimates", {"amount": "5.00"}, key="late")
    assert_problem(replayed, 409)
    assert replayed.get_json() == refused.get_json()
    assert [e["type"] for e in http.events(project)][-1] == "Reopened"


def test_a_validation_refusal_is_replayed_too(http: Http) -> None:
    project = http.register()
    bad = {"amount": "1.001"}
    assert_problem(http.command(project, "cost-estimates", bad, key="typo"), 422, "amount")
    assert_problem(http.command(project, "cost-estimates", bad, key="typo"), 422, "amount")


def test_keys_are_scoped_per_actor(http: Http, services: Services) -> None:
    project = http.register()
    body = {"rating": "Green"}
    alice, bob = (make_token(services, name=name) for name in ("alice", "bob"))
    assert http.command(project, "status-reports", body, key="k", token=alice).status_code == 201
    assert http.command(project, "status-reports", body, key="k", token=bob).status_code == 201
    assert [e["actor"] for e in http.events(project)][1:] == ["token:alice", "token:bob"]


@pytest.mark.parametrize("key", ["x" * 256, "tab\there", "é-accent", " "])
def test_an_invalid_key_is_a_bad_request(http: Http, key: str) -> None:
    project = http.register()
    response = http.command(project, "status-reports", {"rating": "Green"}, key=key)
    assert_problem(response, 400, "Idempotency-Key")
    assert len(http.events(project)) == 1


def test_a_key_whose_request_is_in_flight_gets_a_conflict(
    http: Http, app: Flask, services: Services
) -> None:
    project = http.register()
    path = f"/api/projects/{project}/status-reports"
    body = {"rating": "Green", "effective_date": "2024-03-01"}
    with app.test_request_context(path, method="POST", json=body):
        in_flight = fingerprint()
    IdempotencyStore(services.db).claim(f"token:{ADMIN}", "busy", in_flight)
    response = http.post(path, body, key="busy")
    assert_problem(response, 409, "Idempotency-Key")
    assert response.headers["Retry-After"] == "1"
    assert len(http.events(project)) == 1


def test_a_server_error_releases_the_key_for_a_retry(
    http: Http, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = http.register()

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    with monkeypatch.context() as patch:
        patch.setattr(services.portfolio, "change_project", crash)
        failed = http.command(project, "status-reports", {"rating": "Green"}, key="retry-me")
    assert_problem(failed, 500)
    retried = http.command(project, "status-reports", {"rating": "Green"}, key="retry-me")
    assert retried.status_code == 201
    assert len(http.events(project)) == 2
