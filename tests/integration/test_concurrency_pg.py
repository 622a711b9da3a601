"""Concurrent commands on the real PostgreSQL: one wins, the others are refused, none is merged."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import authorize, make_token

pytestmark = pytest.mark.postgres

WRITERS = 20


@pytest.fixture
def app(pg_settings: Settings, make_services: Callable[..., Services]) -> Flask:
    services = make_services(pg_settings, today=lambda: date(2024, 6, 30))
    app = create_app(services)
    app.config["ADMIN_TOKEN"] = make_token(services, "admin")
    return app


def _client(app: Flask) -> FlaskClient:
    """A client of its own, sending the admin token."""
    return authorize(app.test_client(), app.config["ADMIN_TOKEN"])


def _register(app: Flask) -> str:
    body = {"name": "SI RH", "ministry_code": "MEF", "effective_date": "2024-01-15"}
    response = _client(app).post("/api/projects", json=body)
    assert response.status_code == 201
    project_id: str = response.get_json()["id"]
    return project_id


def _race(
    app: Flask, path: str, bodies: list[dict[str, Any]], headers: list[dict[str, str]]
) -> list[Any]:
    """Send one request per writer, all released at the same instant, each with its own client."""
    start = threading.Barrier(len(bodies))

    def send(i: int) -> Any:
        client = _client(app)
        start.wait()
        return client.post(path, json=bodies[i], headers=headers[i])

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, range(len(bodies))))


def _events(app: Flask, project_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = _client(app).get(f"/api/projects/{project_id}/events").get_json()
    return events


def test_concurrent_estimates_with_the_same_if_match_record_exactly_one(app: Flask) -> None:
    project = _register(app)
    bodies = [{"amount": f"{1000 + i}.00", "effective_date": "2024-03-01"} for i in range(WRITERS)]
    responses = _race(
        app, f"/api/projects/{project}/cost-estimates", bodies, [{"If-Match": '"1"'}] * WRITERS
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 412: WRITERS - 1}
    assert all(r.mimetype == "application/problem+json" for r in responses if r.status_code == 412)
    events = _events(app, project)
    assert len(events) == 2
    [winner] = [i for i, r in enumerate(responses) if r.status_code == 201]
    assert events[-1]["payload"]["amount"] == bodies[winner]["amount"]


def test_concurrent_retries_with_one_idempotency_key_record_exactly_one(app: Flask) -> None:
    project = _register(app)
    body = {"amount": "2500.00", "effective_date": "2024-03-01"}
    responses = _race(
        app,
        f"/api/projects/{project}/cost-estimates",
        [body] * WRITERS,
        [{"Idempotency-Key": "retry-storm"}] * WRITERS,
    )
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409} and statuses[201] >= 1
    assert len({r.get_data() for r in responses if r.status_code == 201}) == 1
    assert len(_events(app, project)) == 2


def test_concurrent_estimates_without_if_match_are_recorded_one_after_another(
    app: Flask,
) -> None:
    """Without a precondition the command is retried on the new state; any refusal is explicit."""
    project = _register(app)
    writers = 5
    bodies = [{"amount": f"{1000 + i}.00", "effective_date": "2024-03-01"} for i in range(writers)]
    responses = _race(app, f"/api/projects/{project}/cost-estimates", bodies, [{}] * writers)
    statuses = Counter(r.status_code for r in responses)
    versions = sorted(r.get_json()["version"] for r in responses if r.status_code == 201)
    assert versions == list(range(2, 2 + statuses[201]))
    assert len(_events(app, project)) == 1 + statuses[201]
    assert set(statuses) <= {201, 412} and statuses[201] >= 2
