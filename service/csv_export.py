"""Tables of the API's answers (projects, a project, its history, the summary, the changes).

Each answer is a table (columns, rows) written as CSV (`format=csv` or `Accept: text/csv`, in
a dialect) or XLSX (`format=xlsx` or the XLSX media type) by service.spreadsheet, which
neutralises formula-like text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from flask import Response

from service.schemas import plain
from service.spreadsheet import DIALECTS, XLSX_MIMETYPE, csv_bytes, csv_text, xlsx_bytes

PROJECT_COLUMNS = (
    "id",
    "name",
    "ministry_code",
    "ministry_name",
    "phase",
    "start_date",
    "currency",
    "cost",
    "baseline_cost",
    "budget_drift_pct",
    "planned_end",
    "baseline_end",
    "duration_years",
    "schedule_drift_pct",
    "cv_pct",
    "sv_pct",
    "rating",
    "funding_received",
    "interministerial",
    "in_portfolio",
    "figures_withheld",
    "closed",
)
FIGURE_COLUMNS = (
    "projects",
    "interministerial_projects",
    "costed_projects",
    "total_cost",
    "total_cost_engaged",
    "mean_duration_years",
    "mean_schedule_drift_pct",
    "median_schedule_drift_pct",
    "weighted_schedule_drift_pct",
    "mean_budget_drift_pct",
    "median_budget_drift_pct",
    "weighted_budget_drift_pct",
)
STEP_COLUMNS = ("version", "position", "type", "effective_date", "recorded_at", "actor", "source")
Table = tuple[Sequence[str], list[list[Any]]]


def _text(value: Any) -> str:
    """A header value as text (cells go through service.spreadsheet instead)."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def table_response(
    table: Table, name: str, reflects: dict[str, Any], fmt: str, dialect: str | None = None
) -> Response:
    """A CSV or XLSX download that states what it was computed from, in its headers."""
    columns, rows = table
    if fmt == "xlsx":
        response = Response(xlsx_bytes(rows, columns, sheet=name), mimetype=XLSX_MIMETYPE)
    else:
        body = csv_bytes(rows, columns, DIALECTS[dialect or "rfc4180"])
        response = Response(body, mimetype="text/csv")
        response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    for key, value in reflects.items():
        response.headers[f"X-Panorama-{key.replace('_', '-').title()}"] = _text(value)
    return response


def projects_table(items: Sequence[dict[str, Any]], currency: str) -> Table:
    """One row per project; amounts are in `currency`, stated in its own column."""
    with_currency = ({**item, "currency": currency} for item in items)
    return PROJECT_COLUMNS, [[item.get(c) for c in PROJECT_COLUMNS] for item in with_currency]


def projects_csv(items: Sequence[dict[str, Any]], currency: str) -> str:
    return csv_text(*projects_table(items, currency))


def summary_table(summary: dict[str, Any], currency: str) -> Table:
    """The portfolio, then each ministry (stable code) and phase, with the currency."""
    rows: list[list[Any]] = [["portfolio", "", *[summary[c] for c in FIGURE_COLUMNS], currency]]
    for scope in ("by_ministry", "by_phase"):
        for key, figures in summary[scope].items():
            cells = [figures[c] for c in FIGURE_COLUMNS]
            rows.append([scope.removeprefix("by_"), key, *cells, currency])
    return ("scope", "key", *FIGURE_COLUMNS, "currency"), rows


def summary_csv(summary: dict[str, Any], currency: str) -> str:
    return csv_text(*summary_table(summary, currency))


CHANGE_COLUMNS = ("change", "id", "name", "ministry_code", "from", "to", "events")
CHANGE_KINDS = ("entered", "left", "phase_changes", "cost_changes", "schedule_changes")


def changes_rows(changes: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[list[Any]]:
    """One row per (kind, change), with the events responsible (`Type@vN;...`)."""
    for kind, change in changes:
        events = ";".join(f"{e['type']}@v{e['version']}" for e in change["events"])
        yield [
            kind,
            change["id"],
            change["name"],
            change["ministry_code"],
            change.get("from"),
            change.get("to"),
            events,
        ]


def changes_table(changes: Iterable[tuple[str, dict[str, Any]]], currency: str) -> Table:
    """The changes (`queries.each_change`) as a table, with the currency of the amounts."""
    rows = [[*row, currency] for row in changes_rows(changes)]
    return (*CHANGE_COLUMNS, "currency"), rows


def changes_csv(changes: Iterable[tuple[str, dict[str, Any]]], currency: str) -> str:
    return csv_text(*changes_table(changes, currency))


def history_table(steps: Sequence[dict[str, Any]], currency: str, full: bool) -> Table:
    """One row per changed field of each step (field, old, new), or per step's whole state."""
    rows: list[list[Any]] = []
    if full:
        for step in steps:
            state = {**(step["state"] or {}), "currency": currency}
            event = [step["event"].get(c) for c in STEP_COLUMNS]
            rows.append([*event, *[state.get(c) for c in PROJECT_COLUMNS]])
        return (*STEP_COLUMNS, *(f"state_{c}" for c in PROJECT_COLUMNS)), rows
    for step in steps:
        event = [step["event"].get(c) for c in STEP_COLUMNS]
        for change in step["changes"]:
            rows.append([*event, change["field"], _cell(change["old"]), _cell(change["new"])])
    return (*STEP_COLUMNS, "field", "old", "new"), rows


def _cell(value: Any) -> Any:
    """A changed value as one cell: a list (programmes, links) joined with `;`."""
    return ";".join(str(v) for v in value) if isinstance(value, list | tuple) else value
