"""Funding programmes over HTTP: list and read them (as of a date, as known at a time),
create them, revise their envelope, open calls, record money for projects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from flask import Response
from flask.views import MethodView

from domain.errors import ProjectNotFound
from service import programme_reads
from service.auth import require_read
from service.blueprints import Blueprint
from service.commands import (
    SUCCESS_HEADERS,
    Reply,
    answer,
    apply,
    attempt,
    command,
    provenance,
    run,
)
from service.context import current_services
from service.errors import Problem
from service.programme_schemas import (
    CallSchema,
    ProgrammeArgs,
    ProgrammeListSchema,
    ProgrammeViewSchema,
)
from service.schemas import (
    AwardResultSchema,
    AwardSchema,
    CallOpeningSchema,
    CommandResultSchema,
    EnvelopeRevisionSchema,
    ProgrammeCreationSchema,
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
    @programmes.arguments(ProgrammeArgs, location="query")
    @programmes.response(200, ProgrammeListSchema)
    @require_read()
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Every funding programme on `as_of` (default today), as known at `known_at`."""
        as_of = args.get("as_of") or datetime.now(UTC).date()
        known_at = args.get("known_at")
        items = programme_reads.programmes(current_services(), as_of, known_at)
        return {"as_of": as_of, "known_at": known_at, "items": items}

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
    @programmes.arguments(ProgrammeArgs, location="query")
    @programmes.response(200, ProgrammeViewSchema, headers=SUCCESS_HEADERS)
    @programmes.alt_response(404, response="NOT_FOUND")
    @require_read()
    def get(
        self, args: dict[str, Any], programme_id: UUID
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Envelope in force, committed and available on `as_of`, by call and by ministry.

        Each call's published count and total stand next to the itemised ones; every
        amount states its currency and its kind (envelope, announced, engaged, disbursed).
        """
        services = current_services()
        found = programme_reads.programme(
            services, programme_id, args.get("as_of"), args.get("known_at")
        )
        programme = services.portfolio.get_programme(programme_id)
        state = programme_reads.public(found) | {
            "version": programme.version,
            "awards": programme.awards,
        }
        return state, {"ETag": f'"{programme.version}"'}


@programmes.route("/<uuid:programme_id>/calls/<path:call>")
class Call(MethodView):
    @programmes.arguments(ProgrammeArgs, location="query")
    @programmes.response(200, CallSchema)
    @programmes.alt_response(404, response="NOT_FOUND")
    @require_read()
    def get(self, args: dict[str, Any], programme_id: UUID, call: str) -> dict[str, Any]:
        """One call on `as_of`: published against itemised, and its laureates."""
        found = programme_reads.call(
            current_services(), programme_id, call, args.get("as_of"), args.get("known_at")
        )
        if found is None:
            raise Problem(404, f"no call {call!r} on this programme on that date", field="call")
        return found


@programmes.route("/<uuid:programme_id>/envelope")
class Envelope(MethodView):
    @programmes.arguments(EnvelopeRevisionSchema)
    @programmes.response(201, CommandResultSchema, headers=SUCCESS_HEADERS)
    @command(programmes, roles=ADMIN)
    def post(self, body: dict[str, Any], programme_id: UUID) -> Reply | Response:
        """Revise the envelope from the effective date, with a reason (never below committed)."""
        prov, args = provenance(body)
        return apply(lambda p: p.revise_envelope, programme_id, prov, args)


@programmes.route("/<uuid:programme_id>/calls")
class Calls(MethodView):
    @programmes.arguments(CallOpeningSchema)
    @programmes.response(201, CommandResultSchema, headers=SUCCESS_HEADERS)
    @command(programmes, roles=ADMIN)
    def post(self, body: dict[str, Any], programme_id: UUID) -> Reply | Response:
        """Open a call for projects on the programme."""
        prov, args = provenance(body)
        return apply(lambda p: p.open_call, programme_id, prov, args)


@programmes.route("/<uuid:programme_id>/awards")
class Awards(MethodView):
    @programmes.arguments(AwardSchema)
    @programmes.response(201, AwardResultSchema, headers=SUCCESS_HEADERS)
    @command(programmes, roles=ADMIN)
    def post(self, body: dict[str, Any], programme_id: UUID) -> Reply | Response:
        """Record money for a project: an announced award (on the programme and the project,
        atomically; it commits the envelope in force on its date), or engaged or disbursed
        money (on the programme only; never added to the announced).

        If-Match names the programme's version; the envelope is never over-committed.
        """
        prov, args = provenance(body)
        portfolio = current_services().portfolio
        project_id: UUID = args["project_id"]
        try:
            return run(
                lambda: attempt(
                    lambda expected: portfolio.record_funding(
                        programme_id,
                        project_id=project_id,
                        amount=args["amount"],
                        kind=args["kind"],
                        call=args["call"],
                        provenance=prov,
                        expected_version=expected,
                        currency=args.get("currency"),
                    )
                ),
                lambda result: answer(result, project_version=result.versions.get(project_id)),
                AwardResultSchema(),
            )
        except ProjectNotFound as e:
            raise Problem(422, str(e), field="project_id") from None
