"""Idempotency-Key: a retried command records once and gets the first answer again."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import pytest
from flask import Flask

from domain.application import Provenance, recorded_with_events
from projections.recorders import WriteRefused
from service.bootstrap import Services
from service.config import Settings
from service.idempotency import Claim, IdempotencyStore, StoredResponse, fingerprint
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
    body = {"name": "France Connect", "ministry_code": "SPM", "effective_date": "2024-01-15"}
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
        patch.setattr(services.portfolio, "report_status", crash)
        failed = http.command(project, "status-reports", {"rating": "Green"}, key="retry-me")
    assert_problem(failed, 500)
    retried = http.command(project, "status-reports", {"rating": "Green"}, key="retry-me")
    assert retried.status_code == 201
    assert len(http.events(project)) == 2


class Clock:
    """The idempotency store's clock, moved by the test."""

    def __init__(self, store: IdempotencyStore) -> None:
        self.now = store.clock()
        store.clock = lambda: self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def store_of(app: Flask) -> IdempotencyStore:
    store: IdempotencyStore = app.extensions["panorama_idempotency"]
    return store


def claimed_elsewhere(app: Flask, services: Services, path: str, body: dict[str, Any]) -> Claim:
    """A claim of this exact request by a process that then died (no outcome)."""
    with app.test_request_context(path, method="POST", json=body):
        in_flight = fingerprint()
    claim = store_of(app).claim(f"token:{ADMIN}", "abandoned", in_flight)
    assert isinstance(claim, Claim)
    return claim


def test_an_abandoned_claim_is_run_again_once_its_lease_is_over(
    http: Http, app: Flask, services: Services
) -> None:
    project = http.register()
    clock = Clock(store_of(app))
    path = f"/api/projects/{project}/status-reports"
    body = {"rating": "Green", "effective_date": "2024-03-01"}
    claimed_elsewhere(app, services, path, body)
    clock.advance(store_of(app).lease_s - 1)
    assert_problem(http.post(path, body, key="abandoned"), 409, "Idempotency-Key")
    clock.advance(2)
    retried = http.post(path, body, key="abandoned")
    assert retried.status_code == 201
    assert http.post(path, body, key="abandoned").get_json() == retried.get_json()
    assert len(http.events(project)) == 2


def test_an_expired_lease_does_not_free_the_key_for_another_request(
    http: Http, app: Flask, services: Services
) -> None:
    project = http.register()
    clock = Clock(store_of(app))
    path = f"/api/projects/{project}/status-reports"
    claimed_elsewhere(app, services, path, {"rating": "Green", "effective_date": "2024-03-01"})
    clock.advance(store_of(app).lease_s + 1)
    other = {"rating": "Amber", "effective_date": "2024-03-01"}
    assert_problem(http.post(path, other, key="abandoned"), 422, "Idempotency-Key")
    assert len(http.events(project)) == 1


def test_the_outcome_is_committed_with_the_events_even_if_the_answer_is_never_stored(
    http: Http, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = http.register()

    def died(*args: object) -> None:
        raise SystemExit("the process is gone")

    with monkeypatch.context() as patch:  # what is left after a kill -9 right after COMMIT
        patch.setattr(IdempotencyStore, "complete", died)
        patch.setattr(IdempotencyStore, "release", died)
        first = http.command(project, "cost-estimates", {"amount": "42.00"}, key="k")
    replay = http.command(project, "cost-estimates", {"amount": "42.00"}, key="k")
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_data() == first.get_data()
    assert replay.headers["ETag"] == first.headers["ETag"] == '"2"'
    assert len(http.events(project)) == 2


def test_a_registration_replays_its_location_from_the_outcome_saved_with_it(http: Http) -> None:
    body = {"name": "France Connect", "ministry_code": "SPM", "effective_date": "2024-01-15"}
    first = http.post("/api/projects", body, key="reg")
    again = http.post("/api/projects", body, key="reg")
    assert (
        again.headers["Location"]
        == first.headers["Location"]
        == f"/api/projects/{first.get_json()['id']}"
    )
    assert again.get_data() == first.get_data()


def test_a_save_whose_claim_was_taken_over_records_nothing(
    http: Http, app: Flask, services: Services
) -> None:
    project = http.register()
    store = store_of(app)
    clock = Clock(store)
    path = f"/api/projects/{project}/status-reports"
    body = {"rating": "Green", "effective_date": "2024-03-01"}
    slow = claimed_elsewhere(app, services, path, body)
    clock.advance(store.lease_s + 1)
    assert http.post(path, body, key="abandoned").status_code == 201  # the retry took over
    answer = StoredResponse(201, "{}", {})
    prov = Provenance(effective_date=date(2024, 3, 1), actor=slow.actor, narrative="late")
    with (
        pytest.raises(WriteRefused),
        recorded_with_events(lambda result: store.record_statement(slow, answer)),
    ):
        services.portfolio.report_status(UUID(project), "Red", provenance=prov)
    assert [e["type"] for e in http.events(project)] == ["Registered", "StatusReported"]


def test_keys_expire_after_their_ttl(http: Http, app: Flask) -> None:
    project = http.register()
    store = store_of(app)
    clock = Clock(store)
    first = http.command(project, "cost-estimates", {"amount": "42.00"}, key="monthly")
    assert first.status_code == 201
    clock.advance(store.ttl_s + 1)
    assert store.purge() == 1
    reused = http.command(project, "cost-estimates", {"amount": "43.00"}, key="monthly")
    assert reused.status_code == 201
    assert "Idempotent-Replayed" not in reused.headers
    assert len(http.events(project)) == 3


def test_an_expired_key_is_forgotten_before_any_purge(http: Http, app: Flask) -> None:
    project = http.register()
    store = store_of(app)
    clock = Clock(store)
    http.command(project, "cost-estimates", {"amount": "42.00"}, key="monthly")
    store._next_purge = float("inf")  # no purge runs: the claim replaces the expired row
    clock.advance(store.ttl_s + 1)
    reused = http.command(project, "cost-estimates", {"amount": "43.00"}, key="monthly")
    assert reused.status_code == 201
    assert len(http.events(project)) == 3


def test_lease_and_ttl_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {"IDEMPOTENCY_LEASE_SECONDS": "5", "IDEMPOTENCY_TTL_SECONDS": "3600"}
    )
    assert (settings.idempotency_lease_s, settings.idempotency_ttl_s) == (5.0, 3600.0)
    assert (Settings().idempotency_lease_s, Settings().idempotency_ttl_s) == (30.0, 7 * 86400.0)
