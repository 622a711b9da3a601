"""The query API: projects and portfolio figures as of a date, as known at a time.

CSV answers state what they reflect in X-Panorama-* headers, among them X-Panorama-Chain-Head:
the hash-chain link of the last chained event at or before the read model's position, read
in the same read transaction as the rows (the chain's own head when the chain is behind).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from projections import queries
from projections.catchup import position, wait_for
from projections.db import Tx
from projections.figures import project_figures
from projections.hashchain import chain_head
from service import csv_export
from service.auth import require_read
from service.context import current_services
from service.errors import Problem
from service.query_schemas import (
    ChangesArgs,
    ChangesSchema,
    HistorySchema,
    ListArgs,
    ProjectAnswerSchema,
    ProjectListSchema,
    SummarySchema,
    TimeArgs,
    project_filter,
)

reads = Blueprint(
    "reads", __name__, url_prefix="/api", description="Read models: state as of a date."
)


def csv_doc(schema: type) -> dict[str, Any]:
    """Document a 200 answer that is JSON by default and CSV on request."""
    return {
        "responses": {
            "200": {
                "description": "OK: JSON by default, CSV with Accept: text/csv or format=csv",
                "content": {
                    "application/json": {"schema": schema},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        }
    }


def _wait(args: dict[str, Any]) -> None:
    wait_for_position(args.get("min_position"))


def wait_for_position(wanted: int | None) -> None:
    """Read-your-writes: wait (bounded) for `min_position`, else 503 with Retry-After."""
    if wanted is None:
        return
    services = current_services()
    head = services.portfolio.recorder.max_notification_id() or 0
    if wanted > head:
        raise Problem(
            422,
            f"min_position {wanted} is beyond the last recorded position {head}",
            field="min_position",
        )
    reached = wait_for(services.db, wanted, services.settings.min_position_wait_s)
    if reached < wanted:
        raise Problem(
            503,
            f"the read model is at position {reached}, not yet {wanted}; retry shortly",
            field="min_position",
            headers={"Retry-After": "1"},
        )


def _reflects(tx: Tx, args: dict[str, Any]) -> dict[str, Any]:
    at = position(tx)
    reflects = {
        "as_of": args.get("as_of") or datetime.now(UTC).date(),
        "known_at": args.get("known_at") or datetime.now(UTC),
        "position": at,
        "currency": current_services().settings.currency,
    }
    if _wants_csv(args):
        reflects["chain_head"] = chain_head(tx, at)
    return reflects


def _wants_csv(args: dict[str, Any]) -> bool:
    if args.get("format"):
        return bool(args["format"] == "csv")
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    return (
        best == "text/csv"
        and request.accept_mimetypes["text/csv"] > request.accept_mimetypes["application/json"]
    )


def _project_id(project_id: str) -> str:
    try:
        return str(UUID(project_id))
    except ValueError:
        raise Problem(404, f"no project {project_id!r}: ids are UUIDs", field="id") from None


@reads.route("/projects")
class ProjectList(MethodView):
    @reads.arguments(ListArgs, location="query")
    @reads.response(200, ProjectListSchema)
    @reads.doc(**csv_doc(ProjectListSchema))
    @require_read()
    def get(self, args: dict[str, Any]) -> dict[str, Any] | Response:
        """Projects followed on a date, filtered, sorted and paginated."""
        _wait(args)
        with current_services().db.transaction(write=False) as tx:
            reflects = _reflects(tx, args)
            items = queries.list_projects(
                tx,
                reflects["as_of"],
                args.get("known_at"),
                where=project_filter(args),
                include_departed=args["include_departed"],
                sort=args["sort"],
            )
        if _wants_csv(args):
            return csv_export.csv_response(
                csv_export.projects_csv(items, reflects["currency"]), "projects", reflects
            )
        page, per_page = args["page"], args["per_page"]
        chunk = items[(page - 1) * per_page : page * per_page]
        return {**reflects, "page": page, "per_page": per_page, "total": len(items), "items": chunk}


@reads.route("/projects/<project_id>")
class ProjectState(MethodView):
    @reads.arguments(TimeArgs, location="query")
    @reads.response(200, ProjectAnswerSchema)
    @require_read()
    def get(self, args: dict[str, Any], project_id: str) -> dict[str, Any]:
        """A project's state and derived figures on a date, as known at a time."""
        pid = _project_id(project_id)
        _wait(args)
        with current_services().db.transaction(write=False) as tx:
            reflects = _reflects(tx, args)
            state = queries.project_state(tx, pid, reflects["as_of"], args.get("known_at"))
            exists = state is not None or bool(queries.known_ids(tx, [pid]))
        if state is None:
            if exists:
                raise Problem(
                    404,
                    f"project {pid} was not registered yet on {reflects['as_of']}",
                    field="as_of",
                )
            raise Problem(404, f"project {pid} not found", field="id")
        return {**project_figures(state, reflects["as_of"]), **reflects}


@reads.route("/projects/<project_id>/history")
class ProjectHistory(MethodView):
    @reads.arguments(TimeArgs, location="query")
    @reads.response(200, HistorySchema)
    @require_read(auditor_only=True)
    def get(self, args: dict[str, Any], project_id: str) -> dict[str, Any]:
        """The state after each recorded change, with the event that caused it."""
        pid = _project_id(project_id)
        _wait(args)
        services = current_services()
        with services.db.transaction(write=False) as tx:
            steps = queries.history(tx, services.portfolio.mapper, pid)
            at = position(tx)
        if not steps:
            raise Problem(404, f"project {pid} not found", field="id")
        return {"id": pid, "position": at, "currency": services.settings.currency, "steps": steps}


@reads.route("/portfolio/summary")
class PortfolioSummary(MethodView):
    @reads.arguments(TimeArgs, location="query")
    @reads.response(200, SummarySchema)
    @reads.doc(**csv_doc(SummarySchema))
    @require_read()
    def get(self, args: dict[str, Any]) -> dict[str, Any] | Response:
        """The panorama's portfolio figures, overall, by ministry and by phase."""
        _wait(args)
        with current_services().db.transaction(write=False) as tx:
            reflects = _reflects(tx, args)
            figures = queries.summary(tx, reflects["as_of"], args.get("known_at"))
        if _wants_csv(args):
            return csv_export.csv_response(
                csv_export.summary_csv(figures, reflects["currency"]), "summary", reflects
            )
        return {**figures, **reflects}


@reads.route("/portfolio/changes")
class PortfolioChanges(MethodView):
    @reads.arguments(ChangesArgs, location="query")
    @reads.response(200, ChangesSchema)
    @reads.doc(**csv_doc(ChangesSchema))
    @require_read()
    def get(self, args: dict[str, Any]) -> dict[str, Any] | Response:
        """Projects that entered and left, phase, cost and schedule moves between two dates."""
        _wait(args)
        services = current_services()
        after: date = args["from_"]
        until: date = args["to"]
        with services.db.transaction(write=False) as tx:
            at = position(tx)
            head = chain_head(tx, at) if _wants_csv(args) else None
            found = queries.changes(
                tx, services.portfolio.mapper, after, until, args.get("known_at")
            )
        reflects = {
            "from_": after,
            "to": until,
            "known_at": args.get("known_at") or datetime.now(UTC),
            "position": at,
            "currency": services.settings.currency,
        }
        if _wants_csv(args):
            meta = {
                "from": after,
                "to": until,
                "known_at": reflects["known_at"],
                "position": at,
                "chain_head": head,
                "currency": services.settings.currency,
            }
            body = csv_export.changes_csv(found, services.settings.currency)
            return csv_export.csv_response(body, "changes", meta)
        return {**found, **reflects}
