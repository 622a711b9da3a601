"""CSV renderings of the list, the summary and the changes (Accept: text/csv or format=csv).

Every cell is written by service.spreadsheet, which neutralises formula-like text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Response

from service.schemas import plain
from service.spreadsheet import csv_text

PROJECT_COLUMNS = (
    "id",
    "name",
    "ministry_code",
    "phase",
    "start_date",
    "cost",
    "baseline_cost",
    "budget_drift_pct",
    "planned_end",
    "baseline_end",
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


def _text(value: Any) -> str:
    """A header value as text (cells go through service.spreadsheet instead)."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_response(body: str, name: str, reflects: dict[str, Any]) -> Response:
    """A CSV download that states what it was computed from, in its headers."""
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    for key, value in reflects.items():
        response.headers[f"X-Panorama-{key.replace('_', '-').title()}"] = _text(value)
    return response


def projects_csv(items: Sequence[dict[str, Any]], currency: str) -> str:
    """One row per project; `currency` is the currency of every amount (the portfolio's)."""
    return csv_text(
        (*PROJECT_COLUMNS, "currency"),
        ([*[item[c] for c in PROJECT_COLUMNS], currency] for item in items),
    )


def summary_csv(summary: dict[str, Any], currency: str) -> str:
    """The portfolio, then each ministry (stable code) and phase, with the currency."""
    rows: list[list[Any]] = [["portfolio", "", *[summary[c] for c in FIGURE_COLUMNS], currency]]
    for scope in ("by_ministry", "by_phase"):
        for key, figures in summary[scope].items():
            cells = [figures[c] for c in FIGURE_COLUMNS]
            rows.append([scope.removeprefix("by_"), key, *cells, currency])
    return csv_text(("scope", "key", *FIGURE_COLUMNS, "currency"), rows)


CHANGE_COLUMNS = ("change", "id", "name", "ministry_code", "from", "to", "events")
CHANGE_KINDS = ("entered", "left", "phase_changes", "cost_changes", "schedule_changes")


def changes_rows(changes: dict[str, Any]) -> list[list[Any]]:
    """One row per change, of every kind, with the events responsible (`Type@vN;...`)."""
    rows = []
    for kind in CHANGE_KINDS:
        for change in changes[kind]:
            events = ";".join(f"{e['type']}@v{e['version']}" for e in change["events"])
            rows.append(
                [
                    kind,
                    change["id"],
                    change["name"],
                    change["ministry_code"],
                    change.get("from"),
                    change.get("to"),
                    events,
                ]
            )
    return rows


def changes_csv(changes: dict[str, Any], currency: str) -> str:
    """One row per change, with the currency of the cost changes' amounts."""
    rows = [[*row, currency] for row in changes_rows(changes)]
    return csv_text((*CHANGE_COLUMNS, "currency"), rows)
