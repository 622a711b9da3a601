"""Funding programme commands over HTTP: create, open calls, award funding to projects."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from domain.errors import ProjectNotFound
from service.auth import require_read
from service.commands import (
    SUCCESS_HEADERS,
    Reply,
    answer,
    attempt,
    command,
    provenance,
    run,
)
from service.context import current_services
from service.errors import Problem
from service.schemas import (
    AwardResultSchema,
    AwardSchema,
    CallOpeningSchema,
    CommandResultSchema,
    ProgrammeCreationSchema,
    ProgrammeSchema,
)

programmes = Blueprint(
    "programme_commands",
    __name__,
    url_prefix="/api/funding-programmes",
    description="Funding programmes (e.g. FTAP): envelopes, calls and awards.",
)
ADMIN = ("admin",)  # programme commands, awards included, are the portfolio office's (admin)


@programmes.route("")
class Programmes(MethodView):
    @programmes.arguments(ProgrammeCreationSchema)
    @programmes.response(201, CommandResultSchema, headers=SUCCESS_HEADERS)
    @command(programmes, if_match=False, roles=ADMIN)
    def post(self, body: dict[str, Any]) -> Reply | Response:
        """Create a funding programme with its envelope."""
        prov, args = provenance(body)
        return run(
            lambda: current_services().portfolio.create_programme(provenance=prov, **args),
            lambda result: answer(result, location=f"/api/funding-programmes/{result.id}"),
        )


@programmes.route("/<uuid:programme_id>")
class Programme(MethodView):
    @programmes.response(200, ProgrammeSchema, headers=SUCCESS_HEADERS)
    @programmes.alt_response(404, response="NOT_FOUND")
    @require_read()
    def get(self, programme_id: UUID) -> tuple[dict[str, Any], dict[str, str]]:
        """The programme's current state: envelope, committed, available, calls, awards."""
        programme = current_services().portfolio.get_programme(programme_id)
        state = {
            "id": programme.id,
            "version": programme.version,
            "name": programme.name,
            "currency": programme.currency,
            "envelope": programme.envelope,
            "committed": programme.committed,
            "available": programme.available,
            "calls": programme.calls,
            "awards": programme.awards,
        }
        return state, {"ETag": f'"{programme.version}"'}


@programmes.route("/<uuid:programme_id>/calls")
class Calls(MethodView):
    @programmes.arguments(CallOpeningSchema)
    @programmes.response(201, CommandResultSchema, headers=SUCCESS_HEADERS)
    @command(programmes, roles=ADMIN)
    def post(self, body: dict[str, Any], programme_id: UUID) -> Reply | Response:
        """Open a call for projects on the programme."""
        prov, args = provenance(body)
        portfolio = current_services().portfolio
        return run(
            lambda: attempt(
                lambda expected: portfolio.open_call(
                    programme_id, args["call"], provenance=prov, expected_version=expected
                )
            )
        )


@programmes.route("/<uuid:programme_id>/awards")
class Awards(MethodView):
    @programmes.arguments(AwardSchema)
    @programmes.response(201, AwardResultSchema, headers=SUCCESS_HEADERS)
    @command(programmes, roles=ADMIN)
    def post(self, body: dict[str, Any], programme_id: UUID) -> Reply | Response:
        """Award funding to a project: recorded on the programme and the project atomically.

        If-Match names the programme's version; the envelope is never over-committed.
        """
        prov, args = provenance(body)
        portfolio = current_services().portfolio
        project_id: UUID = args["project_id"]
        try:
            return run(
                lambda: attempt(
                    lambda expected: portfolio.award_funding(
                        programme_id,
                        project_id=project_id,
                        amount=args["amount"],
                        call=args["call"],
                        provenance=prov,
                        expected_version=expected,
                        currency=args.get("currency"),
                    )
                ),
                lambda result: answer(result, project_version=result.versions[project_id]),
                AwardResultSchema(),
            )
        except ProjectNotFound as e:
            raise Problem(422, str(e), field="project_id") from None
