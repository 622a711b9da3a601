"""The query API: projects and portfolio figures as of a date, as known at a time.

CSV answers state what they reflect in X-Panorama-* headers, among them X-Panorama-Chain-Head:
the hash-chain link of the last chained event at or before the read model's position, read
in the same read transaction as the rows (the chain's own head when the chain is behind).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, NoReturn
from uuid import UUID

from flask import Response, request
from flask.views import MethodView

from projections import queries
from projections.catchup import position, wait_for
from projections.db import Tx
from projections.figures import project_figures
from projections.hashchain import chain_head
from projections.schema import PROJECTION
from service import csv_export
from service.auth import require_read
from service.blueprints import Blueprint
from service.context import current_services
from service.errors import Problem
from service.query_schemas import (
    ChangesArgs,
    ChangesSchema,
    HistoryArgs,
    HistorySchema,
    ListArgs,
    ProjectAnswerSchema,
    ProjectListSchema,
    SummarySchema,
    TimeArgs,
    project_filter,
)
from service.spreadsheet import XLSX_MIMETYPE

reads = Blueprint(
    "reads", __name__, url_prefix="/api", description="Read models: state as of a date."
)


def csv_doc(schema: type) -> dict[str, Any]:
    """Document a 200 answer that is JSON by default, CSV or XLSX on request."""
    return {
        "responses": {
            "200": {
                "description": "OK: JSON by default; CSV with Accept: text/csv or format=csv"
                " (dialect=excel-fr: BOM, semicolons, decimal comma); XLSX with Accept: "
                f"{XLSX_MIMETYPE} or format=xlsx",
                "content": {
                    "application/json": {"schema": schema},
                    "text/csv": {"schema": {"type": "string"}},
                    XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}},
                },
            }
        }
    }


def _wait(args: dict[str, Any]) -> None:
    wait_for_position(args.get("min_position"))


def wait_for_position(wanted: int | None, projection: str = PROJECTION) -> None:
    """Read-your-writes: wait (bounded) until `projection` has reached `min_position`, else
    503 with Retry-After."""
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
    reached = wait_for(services.db, wanted, services.settings.min_position_wait_s, projection)
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
    if _table_format(args):
        reflects["chain_head"] = chain_head(tx, at)
    return reflects


def _table_format(args: dict[str, Any]) -> str | None:
    """ "csv" or "xlsx" when the answer is wanted as a table (format=, else Accept), else None."""
    if args.get("format"):
        return None if args["format"] == "json" else str(args["format"])
    accept = request.accept_mimetypes
    best = accept.best_match(["application/json", "text/csv", XLSX_MIMETYPE])
    if best in ("text/csv", XLSX_MIMETYPE) and accept[best] > accept["application/json"]:
        return "csv" if best == "text/csv" else "xlsx"
    return None


def _table(
    args: dict[str, Any], table: csv_export.Table, name: str, reflects: dict[str, Any]
) -> Response:
    fmt = _table_format(args)
    assert fmt is not None
    return csv_export.table_response(table, name, reflects, fmt, args.get("dialect"))


def _currency() -> str:
    return current_services().settings.currency


def _project_id(project_id: str) -> str:
    try:
        return str(UUID(project_id))
    except ValueError:
        raise Problem(404, f"no project {project_id!r}: ids are UUIDs", field="id") from None


@reads.route("/projects")
class ProjectList(MethodView):
    @reads.arguments(ListArgs, location="query", unknown=None)
    @reads.alt_response(400, response="BAD_REQUEST", description="an unknown query parameter")
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
        if _table_format(args):
            return _table(args, csv_export.projects_table(items, _currency()), "projects", reflects)
        page, per_page = args["page"], args["per_page"]
        chunk = items[(page - 1) * per_page : page * per_page]
        return {**reflects, "page": page, "per_page": per_page, "total": len(items), "items": chunk}


@reads.route("/projects/<project_id>")
class ProjectState(MethodView):
    @reads.arguments(TimeArgs, location="query", unknown=None)
    @reads.alt_response(400, response="BAD_REQUEST", description="an unknown query parameter")
    @reads.response(200, ProjectAnswerSchema)
    @reads.doc(**csv_doc(ProjectAnswerSchema))
    @require_read()
    def get(self, args: dict[str, Any], project_id: str) -> dict[str, Any] | Response:
        """A project's state and derived figures on a date, as known at a time."""
        pid = _project_id(project_id)
        _wait(args)
        with current_services().db.transaction(write=False) as tx:
            reflects = _reflects(tx, args)
            as_of, known_at = reflects["as_of"], args.get("known_at")
            state = queries.project_state(tx, pid, as_of, known_at)
            if state is None:
                _not_there(tx, pid, as_of, known_at)
        figures = project_figures(state, as_of)
        if _table_format(args):
            table = csv_export.projects_table([figures], _currency())
            return _table(args, table, "project", reflects)
        return {**figures, **reflects}


def _not_there(tx: Tx, pid: str, as_of: date, known_at: datetime | None) -> NoReturn:
    """404 naming what hides the project: its id, `as_of` (before it), or `known_at`."""
    if not queries.known_ids(tx, [pid]):
        raise Problem(404, f"project {pid} not found", field="id")
    registered_later = queries.project_state(tx, pid, as_of, None) is None
    recorded_later = (
        known_at is not None and queries.project_state(tx, pid, date.max, known_at) is None
    )
    if registered_later and recorded_later and known_at is not None:
        raise Problem(
            404,
            f"project {pid} was not registered yet on {as_of} (as_of), and nothing about it"
            f" was recorded yet at {known_at.isoformat()} (known_at)",
            field="as_of",
        )
    if registered_later:
        raise Problem(404, f"project {pid} was not registered yet on {as_of}", field="as_of")
    assert known_at is not None
    raise Problem(
        404,
        f"project {pid}'s state on {as_of} was not recorded yet at {known_at.isoformat()}",
        field="known_at",
    )


@reads.route("/projects/<project_id>/history")
class ProjectHistory(MethodView):
    @reads.arguments(HistoryArgs, location="query", unknown=None)
    @reads.alt_response(400, response="BAD_REQUEST", description="an unknown query parameter")
    @reads.response(200, HistorySchema)
    @reads.doc(**csv_doc(HistorySchema))
    @require_read(auditor_only=True)
    def get(self, args: dict[str, Any], project_id: str) -> dict[str, Any] | Response:
        """What each recorded change changed (field: old, new), with the event that caused it.

        With full=true, each step also gives the whole state after it.
        """
        pid = _project_id(project_id)
        _wait(args)
        services = current_services()
        with services.db.transaction(write=False) as tx:
            steps = queries.history(tx, services.portfolio.mapper, pid)
            at = position(tx)
            head = chain_head(tx, at) if _table_format(args) else None
        if not steps:
            raise Problem(404, f"project {pid} not found", field="id")
        if _table_format(args):
            table = csv_export.history_table(steps, _currency(), args["full"])
            meta = {"id": pid, "position": at, "chain_head": head}
            return _table(args, table, "history", meta)
        if not args["full"]:
            steps = [{k: v for k, v in step.items() if k != "state"} for step in steps]
        return {"id": pid, "position": at, "currency": _currency(), "steps": steps}


@reads.route("/portfolio/summary")
class PortfolioSummary(MethodView):
    @reads.arguments(TimeArgs, location="query", unknown=None)
    @reads.alt_response(400, response="BAD_REQUEST", description="an unknown query parameter")
    @reads.response(200, SummarySchema)
    @reads.doc(**csv_doc(SummarySchema))
    @require_read()
    def get(self, args: dict[str, Any]) -> dict[str, Any] | Response:
        """The panorama's portfolio figures, overall, by ministry and by phase."""
        _wait(args)
        with current_services().db.transaction(write=False) as tx:
            reflects = _reflects(tx, args)
            figures = queries.summary(tx, reflects["as_of"], args.get("known_at"))
        if _table_format(args):
            return _table(args, csv_export.summary_table(figures, _currency()), "summary", reflects)
        return {**figures, **reflects}


@reads.route("/portfolio/changes")
class PortfolioChanges(MethodView):
    @reads.arguments(ChangesArgs, location="query", unknown=None)
    @reads.alt_response(400, response="BAD_REQUEST", description="an unknown query parameter")
    @reads.response(200, ChangesSchema)
    @reads.doc(**csv_doc(ChangesSchema))
    @require_read()
    def get(self, args: dict[str, Any]) -> dict[str, Any] | Response:
        """Projects that entered and left, phase, cost and schedule moves between two dates.

        Paged per kind: each list holds `limit` changes at most (default 100), sorted by name;
        `counts` gives every kind's total, `next` each list's next-page cursor (null at its
        end), to pass back as `cursor` (the answer then holds that kind only). CSV and XLSX
        downloads hold every change.
        """
        _wait(args)
        services = current_services()
        after: date = args["from_"]
        until: date = args["to"]
        table = None
        with services.db.transaction(write=False) as tx:
            at = position(tx)
            known_at = args.get("known_at")
            if _table_format(args):
                head = chain_head(tx, at)
                every = queries.each_change(tx, after, until, known_at)
                table = csv_export.changes_table(every, _currency())
            else:
                found = queries.changes(
                    tx,
                    services.portfolio.mapper,
                    after,
                    until,
                    known_at,
                    limit=args["limit"],
                    kind=args["cursor"].kind if args.get("cursor") else args.get("kind"),
                    cursor=args.get("cursor"),
                )
        reflects = {
            "from_": after,
            "to": until,
            "known_at": args.get("known_at") or datetime.now(UTC),
            "position": at,
            "currency": services.settings.currency,
        }
        if table is not None:
            meta = {
                "from": after,
                "to": until,
                "known_at": reflects["known_at"],
                "position": at,
                "chain_head": head,
                "currency": services.settings.currency,
            }
            return _table(args, table, "changes", meta)
        return {**found, **reflects}
