"""The API describes itself (OpenAPI 3), documents itself offline, and reports its health."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from service.bootstrap import Services
from tests.e2e.conftest import assert_problem

NOT_DOCUMENTED = {
    "/api/openapi.json",
    "/api/docs",
    "/api/docs/static/<path:filename>",
    "/static/<path:filename>",
}


COMMAND_PATHS = ("/api/projects", "/api/funding-programmes")


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


def test_the_openapi_document_is_valid_openapi_3(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.")
    validate(spec)


def test_the_openapi_document_lists_every_route(app: Flask, spec: dict[str, Any]) -> None:
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule not in NOT_DOCUMENTED and rule.endpoint.split(".")[0] != "web"  # pages
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert routes == documented
    assert ("/api/projects/{project_id}/phase-transitions", "post") in documented
    assert ("/api/funding-programmes/{programme_id}/awards", "post") in documented


def test_every_command_documents_its_headers_and_problem_responses(spec: dict[str, Any]) -> None:
    problem = spec["components"]["responses"]["PRECONDITION_FAILED"]["content"]
    assert "application/problem+json" in problem
    for path, item in spec["paths"].items():
        if "post" not in item or not path.startswith(COMMAND_PATHS):
            continue
        operation = item["post"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path
        statuses = {"400", "401", "403", "409", "413", "415", "422"}
        assert statuses <= set(operation["responses"]), path
        assert operation["security"] == [{"bearerAuth": []}], path
        if "{" in path:
            assert "If-Match" in headers and {"404", "412"} <= set(operation["responses"]), path


def test_amounts_are_documented_as_decimal_strings(spec: dict[str, Any]) -> None:
    amount = spec["components"]["schemas"]["CostEstimate"]["properties"]["amount"]
    assert amount["type"] == "string" and amount["format"] == "decimal"
    assert spec["components"]["schemas"]["CostEstimate"]["additionalProperties"] is False


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def test_the_docs_page_is_served_from_local_files_only(client: FlaskClient) -> None:
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    links = _Links()
    links.feed(html)
    assert links.urls, "the page loads Swagger UI's script and stylesheet"
    for url in links.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        assert client.get(url).status_code == 200, url
    assert not re.search(r"https?://", html)
    assert '"validatorUrl": null' in html


def test_healthz_answers_while_the_process_is_up(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz_answers_when_the_event_store_does(client: FlaskClient, services: Services) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    head = services.portfolio.recorder.max_notification_id()  # the reference data seeded
    assert response.get_json() == {"status": "ready", "position": head}


def test_readyz_is_503_when_the_database_is_down(
    client: FlaskClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> None:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(services.db, "ping", down)
    assert_problem(client.get("/readyz"), 503)
    assert client.get("/healthz").status_code == 200
