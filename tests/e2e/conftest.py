"""End-to-end fixtures: the real app over HTTP (Flask's test client), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from service.app import create_app
from service.bootstrap import Services
from service.config import Settings
from service.tokens import TokenStore

TODAY = date(2024, 6, 30)
REGISTERED_ON = "2024-01-15"
ADMIN = "e2e-admin"  # the name of the admin token every test client sends by default


def make_token(
    services: Services, role: str = "admin", *ministries: str, name: str | None = None
) -> str:
    """Create an API token with the store itself (what `panorama tokens create` does)."""
    store = TokenStore(services.db)
    store.create_table()
    return store.create(role, ministries=ministries, name=name)[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def authorize(client: FlaskClient, token: str) -> FlaskClient:
    """Make every request of this client carry the token (a request's own headers win)."""
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


class Http:
    """A thin client for the command API, so tests read as what a user does."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def post(
        self,
        path: str,
        body: Any,
        *,
        if_match: str | None = None,
        key: str | None = None,
        token: str | None = None,
    ) -> TestResponse:
        """POST as the client's admin, or with `token`."""
        headers = {}
        if if_match is not None:
            headers["If-Match"] = if_match
        if key is not None:
            headers["Idempotency-Key"] = key
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.post(path, json=body, headers=headers)

    def register(self, **fields: Any) -> str:
        """Register a project (effective mid-January 2024) and return its id."""
        body = {"name": "SI paie", "ministry_code": "MINARM", "effective_date": REGISTERED_ON}
        response = self.post("/api/projects", body | fields)
        assert response.status_code == 201, response.get_json()
        project_id: str = response.get_json()["id"]
        return project_id

    def command(
        self, project_id: str, resource: str, body: dict[str, Any], **headers: Any
    ) -> TestResponse:
        """POST one command to a project, effective 1 March 2024 unless the body says otherwise."""
        body = {"effective_date": "2024-03-01"} | body
        return self.post(f"/api/projects/{project_id}/{resource}", body, **headers)

    def events(self, project_id: str) -> list[dict[str, Any]]:
        response = self.client.get(f"/api/projects/{project_id}/events")
        assert response.status_code == 200
        events: list[dict[str, Any]] = response.get_json()
        return events


# E-mail subscriptions need an SMTP_URL; nothing listens on this loopback port.
UNREACHABLE_SMTP = "smtp://127.0.0.1:9?from=alerts@panorama.test"


@pytest.fixture
def services(settings: Settings, make_services: Callable[..., Services]) -> Services:
    """Services on a fresh store whose "today" is 30 June 2024 (SMTP set, unreachable)."""
    settings = replace(settings, smtp_url=settings.smtp_url or UNREACHABLE_SMTP)
    return make_services(settings, today=lambda: TODAY)


@pytest.fixture
def app(services: Services) -> Flask:
    app = create_app(services)
    app.testing = True
    return app


@pytest.fixture
def client(app: Flask, services: Services) -> FlaskClient:
    """A client that sends an admin token (named ADMIN) with every request."""
    return authorize(app.test_client(), make_token(services, "admin", name=ADMIN))


@pytest.fixture
def http(client: FlaskClient) -> Http:
    return Http(client)


def assert_problem(response: TestResponse, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is an RFC 7807 problem with this status, naming this field."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem: dict[str, Any] = response.get_json(force=True)
    assert problem["status"] == status
    assert problem["title"] and problem["detail"] and problem["type"]
    if field is not None:
        assert problem.get("field") == field, problem
    return problem
