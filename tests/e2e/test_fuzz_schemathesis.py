"""Property-based fuzzing of every operation: no 5xx, and every answer is the documented one.

Each generated case is sent as every kind of caller: with an admin, a manager (scoped to the
seeded project's ministry), an auditor and a subscriber token, and anonymously.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict
from schemathesis.checks import not_a_server_error
from schemathesis.hooks import HookContext
from schemathesis.models import Case
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import BaseOpenAPISchema

from service.app import create_app
from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, authorize, make_token

# A slow fuzz (minutes): `make test` runs it, `make test-fast` leaves it out.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.integration]

KNOWN: dict[str, str] = {}  # path parameters of a seeded project and programme
CALLERS = ("admin", "manager", "auditor", "subscriber", None)  # None: anonymous
TOKENS: dict[str | None, str | None] = {}  # a token per caller


@pytest.fixture
def api_schema(settings: Settings, make_services: Callable[..., Services]) -> BaseOpenAPISchema:
    # A fuzzed min_position beyond the log must answer 503 quickly, not after 5 s.
    settings = Settings(**{**vars(settings), "min_position_wait_s": 0.01})
    services = make_services(settings, today=lambda: TODAY)
    app = create_app(services)
    TOKENS.clear()
    for role in CALLERS:  # the manager manages the seeded project's ministry
        TOKENS[role] = role and make_token(services, role, *["SPM"] * (role == "manager"))
    client = authorize(app.test_client(), make_token(services, "admin"))
    project = client.post(
        "/api/projects",
        json={"name": "Seed", "ministry_code": "SPM", "effective_date": "2024-01-15"},
    )
    programme = client.post(
        "/api/funding-programmes",
        json={"name": "FTAP", "envelope": "700000000.00", "effective_date": "2024-01-01"},
    )
    KNOWN.update(project_id=project.get_json()["id"], programme_id=programme.get_json()["id"])
    return schemathesis.from_wsgi("/api/openapi.json", app)


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.hook
def before_generate_path_parameters(
    context: HookContext, strategy: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Aim at the seeded aggregates most of the time, at unknown ids otherwise."""

    def known(params: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if params is None else {k: KNOWN.get(k, v) for k, v in params.items()}

    return st.one_of(strategy.map(known), strategy)


@schema.hook
def before_generate_body(
    context: HookContext, strategy: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Often use an effective date the domain accepts, so commands also succeed."""

    def plausible(body: Any) -> Any:
        if isinstance(body, dict) and "effective_date" in body:
            return body | {"effective_date": "2024-03-01"}
        return body

    return st.one_of(strategy.map(plausible), strategy)


@schema.parametrize()
@hypothesis_settings(
    max_examples=10,  # x 5 callers each: both backends together stay under a minute
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: Case) -> None:
    generated = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    for role in CALLERS if _protected(case) else ("admin",):
        token = TOKENS[role]
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        case.headers = CaseInsensitiveDict(generated | auth)
        case.call_and_validate(
            checks=(
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            )
        )


def _protected(case: Case) -> bool:
    """Whether the operation documents its 401 (or is outside /api, hence public).

    A route under /api that declares no policy (service/auth.py) is admin-only and documents
    no 401: it is fuzzed as an admin only, until it declares its policy.
    """
    responses = case.operation.definition.raw.get("responses", {})
    return "401" in responses or not case.path.startswith("/api/")
