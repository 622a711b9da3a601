"""Project commands over HTTP: parse the body, call the Portfolio, answer with the new version."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Concatenate, TypeVar
from uuid import UUID

from flask import Response, current_app, jsonify, request
from flask.views import MethodView
from marshmallow import Schema

from domain.application import CommandResult, Portfolio, Provenance
from domain.errors import VersionConflict
from service.auth import (
    COMMAND_ROLES,
    current_actor,
    require_ministry,
    require_project_scope,
    require_read,
    require_role,
)
from service.blueprints import Blueprint
from service.context import current_services
from service.errors import Problem
from service.idempotency import HEADER as IDEMPOTENCY_HEADER
from service.idempotency import KEY_PATTERN, IdempotencyStore, outcome_with_events
from service.schemas import (
    ClosureSchema,
    CommandResultSchema,
    CommandSchema,
    CostEstimateSchema,
    DetailsRevisionSchema,
    EventSchema,
    PhaseTransitionSchema,
    ProjectRegistrationSchema,
    RebaselineSchema,
    ScheduleEstimateSchema,
    StatusReportSchema,
    event_record,
)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
Reply = tuple[Any, int, dict[str, str]]

IF_MATCH_PATTERN = r'^(\*|"[0-9]{1,15}"|[0-9]{1,15})$'
PROVENANCE_FIELDS = ("effective_date", "narrative", "source", "correction")
RETRIES_WITHOUT_IF_MATCH = 3
RESULT_SCHEMA = CommandResultSchema()  # one instance: schemas hold no per-request state

projects = Blueprint(
    "project_commands", __name__, url_prefix="/api/projects", description="Project commands."
)

# The request headers a command documents, and the headers of its 201 answer.
COMMAND_HEADERS: dict[str, dict[str, Any]] = {
    "If-Match": {
        "in": "header",
        "name": "If-Match",
        "description": 'The version you last saw, as its ETag ("3"): a stale one gets 412.',
        "schema": {"type": "string", "pattern": IF_MATCH_PATTERN},
    },
    IDEMPOTENCY_HEADER: {
        "in": "header",
        "name": IDEMPOTENCY_HEADER,
        "description": "A key per intended change: a retry with it replays the first answer.",
        "schema": {"type": "string", "pattern": KEY_PATTERN, "maxLength": 255},
    },
}
SUCCESS_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {"description": "The aggregate's new version", "schema": {"type": "string"}},
}


def command(
    blp: Blueprint, *, if_match: bool = True, roles: tuple[str, ...] = COMMAND_ROLES
) -> Callable[[F], F]:
    """Only tokens of `roles` may send it; document its headers and problem+json refusals."""
    names = [IDEMPOTENCY_HEADER] + (["If-Match"] if if_match else [])
    statuses = (400, 404, 409, 412, 413, 415, 422) if if_match else (400, 409, 413, 415, 422)

    def decorate(func: F) -> F:
        func = blp.doc(parameters=[COMMAND_HEADERS[name] for name in names])(func)
        for status in statuses:
            func = blp.alt_response(status, response=HTTPStatus(status).name)(func)
        return require_role(*roles)(func)

    return decorate


def expected_version() -> int | None:
    """The version named by If-Match ("3" or 3), None when absent or "*"."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    value = raw.strip()
    if not re.fullmatch(IF_MATCH_PATTERN, value):
        raise Problem(400, 'If-Match takes one version ETag, e.g. "3"', field="If-Match")
    return None if value == "*" else int(value.strip('"'))


def provenance(body: dict[str, Any]) -> tuple[Provenance, dict[str, Any]]:
    """Split a parsed body into who/when/why and the command's own arguments."""
    prov = Provenance(
        effective_date=body["effective_date"],
        actor=current_actor(),
        source=body.get("source", "api"),
        narrative=body.get("narrative"),
        correction=body.get("correction", False),
    )
    return prov, {k: v for k, v in body.items() if k not in PROVENANCE_FIELDS}


def attempt(run: Callable[[int | None], CommandResult]) -> CommandResult:
    """Run a command; without If-Match, a concurrent save is retried on the new state."""
    expected = expected_version()
    for retry in range(RETRIES_WITHOUT_IF_MATCH):
        try:
            return run(expected)
        except VersionConflict:
            if expected is not None or retry == RETRIES_WITHOUT_IF_MATCH - 1:
                raise
    raise AssertionError("unreachable")


def answer(result: CommandResult, *, location: str | None = None, **extra: Any) -> Reply:
    """201 with the new version as ETag (and the new resource's Location)."""
    headers = {"ETag": f'"{result.version}"'}
    if location is not None:
        headers["Location"] = location
    body = {"id": result.id, "version": result.version, "position": result.position, **extra}
    return body, 201, headers


def notify_committed(result: CommandResult) -> None:
    """Tell the projections the log position of a committed command."""
    try:
        current_services().after_commit(result.position)
    except Exception:  # the command is recorded; the projections' safety net will catch up
        log.exception("after_commit failed at position %s", result.position)


def committed(result: CommandResult, *, location: str | None = None, **extra: Any) -> Reply:
    """201 with the new version as ETag; the projections are told the log position."""
    notify_committed(result)
    return answer(result, location=location, **extra)


def render(reply: Reply, schema: Schema) -> Response:
    """The response flask-smorest would build from a view's (body, status, headers)."""
    body, status, headers = reply
    response = jsonify(schema.dump(body))
    response.status_code = status
    response.headers.update(headers)
    return response


def run(
    command: Callable[[], CommandResult],
    reply: Callable[[CommandResult], Reply] = answer,
    schema: Schema | None = None,
) -> Reply | Response:
    """Run a command and answer `reply(result)`.

    Under an Idempotency-Key the answer is rendered inside the save and committed with the
    events (service/idempotency.py), and that very response is returned.
    """
    store: IdempotencyStore = current_app.extensions["panorama_idempotency"]
    dump = schema or RESULT_SCHEMA
    with outcome_with_events(store, lambda result: render(reply(result), dump)) as rendered:
        result = command()
    notify_committed(result)
    return rendered[-1] if rendered else reply(result)


# A Portfolio command on one aggregate, e.g. `lambda p: p.open_call`, looked up on the
# services' portfolio at each request (so the instance's attribute is the one called).
AggregateMethod = Callable[[Portfolio], Callable[Concatenate[UUID, ...], CommandResult]]


def apply(
    method: AggregateMethod, aggregate_id: UUID, prov: Provenance, arguments: dict[str, Any]
) -> Reply | Response:
    """Run the portfolio's `method(aggregate_id, **arguments)` under If-Match (retried without)."""
    command = method(current_services().portfolio)
    return run(
        lambda: attempt(
            lambda expected: command(
                aggregate_id, provenance=prov, expected_version=expected, **arguments
            )
        )
    )


def same_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The body's fields besides the provenance are the Portfolio method's own arguments."""
    return arguments


@dataclass(frozen=True)
class ProjectCommand:
    """A command on one project, posted to /api/projects/<id>/<path>.

    `view` names the MethodView (hence the endpoint); `doc` is its OpenAPI summary. The
    body's fields besides the provenance, through `arguments` (which may refuse with a
    Problem before the project's scope is checked), are `method`'s keyword arguments.
    """

    view: str
    path: str
    schema: type[Schema]
    method: AggregateMethod
    doc: str
    arguments: Callable[[dict[str, Any]], dict[str, Any]] = same_arguments


def change(project_id: UUID, body: dict[str, Any], spec: ProjectCommand) -> Reply | Response:
    """Run `spec` on a project of the token's scope: 201 with the new version."""
    prov, arguments = provenance(body)
    arguments = spec.arguments(arguments)
    require_project_scope(project_id)
    return apply(spec.method, project_id, prov, arguments)


def project_command(spec: ProjectCommand) -> type[MethodView]:
    """Route `spec` on the projects blueprint: one MethodView whose post runs it."""

    def post(view: MethodView, body: dict[str, Any], project_id: UUID) -> Reply | Response:
        return change(project_id, body, spec)

    post.__doc__ = spec.doc  # before the decorators copy it: the OpenAPI summary
    post = projects.arguments(spec.schema)(
        projects.response(201, CommandResultSchema, headers=SUCCESS_HEADERS)(
            command(projects)(post)
        )
    )
    resource = type(spec.view, (MethodView,), {"post": post, "__module__": __name__})
    projects.route(f"/<uuid:project_id>/{spec.path}")(resource)
    return resource


def details_changes(arguments: dict[str, Any]) -> dict[str, Any]:
    """A manager may move a project only to another of its ministries."""
    if "ministry_code" in arguments:
        require_ministry(arguments["ministry_code"])
    return {"changes": arguments}


# -- routes ----------------------------------------------------------------------------------
@projects.route("")
class Projects(MethodView):
    @projects.arguments(ProjectRegistrationSchema)
    @projects.response(201, CommandResultSchema, headers=SUCCESS_HEADERS)
    @command(projects, if_match=False)
    def post(self, body: dict[str, Any]) -> Reply | Response:
        """Register a project in the portfolio (a manager: for one of its ministries)."""
        require_ministry(body["ministry_code"])
        prov, details = provenance(body)
        return run(
            lambda: current_services().portfolio.register_project(provenance=prov, **details),
            lambda result: answer(result, location=f"/api/projects/{result.id}"),
        )


@projects.route("/<uuid:project_id>/events")
class ProjectEvents(MethodView):
    @projects.response(200, EventSchema(many=True), headers=SUCCESS_HEADERS)
    @projects.alt_response(404, response="NOT_FOUND")
    @require_read(auditor_only=True)
    def get(self, project_id: UUID) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The project's full audit trail, straight from the event store (admin, auditor)."""
        events = current_services().portfolio.project_events(project_id)
        return [event_record(e) for e in events], {"ETag": f'"{len(events)}"'}


PROJECT_COMMANDS = (
    ProjectCommand(
        "PhaseTransitions",
        "phase-transitions",
        PhaseTransitionSchema,
        lambda p: p.transition_phase,
        "Move to another phase: forward may skip phases, backward needs a narrative.",
    ),
    ProjectCommand(
        "CostEstimates",
        "cost-estimates",
        CostEstimateSchema,
        lambda p: p.reestimate_cost,
        "Record a new estimate of the project's total cost.",
    ),
    ProjectCommand(
        "ScheduleEstimates",
        "schedule-estimates",
        ScheduleEstimateSchema,
        lambda p: p.reestimate_schedule,
        "Record a new planned end date.",
    ),
    ProjectCommand(
        "StatusReports",
        "status-reports",
        StatusReportSchema,
        lambda p: p.report_status,
        "Report a RAG rating (météo); Red needs a narrative.",
    ),
    ProjectCommand(
        "Rebaselines",
        "rebaselines",
        RebaselineSchema,
        lambda p: p.rebaseline,
        "Replace the baseline cost and/or end date, with an approver and a reason.",
    ),
    ProjectCommand(
        "Closure",
        "closure",
        ClosureSchema,
        lambda p: p.close_project,
        "Close the project, completed or abandoned: it then accepts only a reopening.",
    ),
    ProjectCommand(
        "DetailsRevisions",
        "details-revisions",
        DetailsRevisionSchema,
        lambda p: p.revise_details,
        "Revise identity details (name, ministry, description, links...).\n\n"
        "A manager may move a project only to another of its ministries.",
        details_changes,
    ),
    ProjectCommand(
        "Reopening",
        "reopening",
        CommandSchema,
        lambda p: p.reopen_project,
        "Reopen a closed project; it needs a narrative.",
    ),
    ProjectCommand(
        "FiguresWithheld",
        "figures-withheld",
        CommandSchema,
        lambda p: p.withhold_figures,
        "Stop publishing the project's figures (they are kept).",
    ),
    ProjectCommand(
        "FiguresDisclosed",
        "figures-disclosed",
        CommandSchema,
        lambda p: p.disclose_figures,
        "Publish the project's figures again.",
    ),
    ProjectCommand(
        "PortfolioExits",
        "portfolio-exits",
        CommandSchema,
        lambda p: p.leave_portfolio,
        "Record that the portfolio no longer follows the project.",
    ),
    ProjectCommand(
        "PortfolioReturns",
        "portfolio-returns",
        CommandSchema,
        lambda p: p.rejoin_portfolio,
        "Record that the portfolio follows the project again.",
    ),
)
PROJECT_VIEWS = [project_command(spec) for spec in PROJECT_COMMANDS]
