"""`/projects/<id>`: one project on a date, its figures over time, its events, its forms.

A public reader sees the project as `GET /api/projects/{id}` shows it, and its timeline
from the read model's events: effective date, recorded time, actor, source, narrative and
what changed, with amounts shown as withheld whenever the project's figures were withheld
on that date. The states "as known right after each event" (`/history`) and `known_at`
stay with auditors and admins, as in the API.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from flask import get_flashed_messages
from marshmallow import fields, validate

import service.web.reads as page_reads
from service.programme_reads import project_funding
from service.queries import wait_for_position
from service.web.blueprint import web
from service.web.home import money_unit
from service.web.pages import download, render_page
from service.web.project_charts import charts
from service.web.project_commands import project_uuid
from service.web.project_forms import COMMANDS, build, defaults
from service.web.project_view import FACTS, entry, helpers, label, shown
from service.web.session import signed_in
from service.web.state import PageArgs, page_state, today


class ProjectArgs(PageArgs):
    """The project page's parameters: the common ones and `min_position` (read-your-writes)."""

    min_position = fields.Integer(validate=validate.Range(min=0, max=2**63 - 1))


@web.route("/projects/<project_id>")
def project(project_id: str) -> Any:
    """One project on `as_of` (default today), as known at `known_at`."""
    pid = project_uuid(project_id)
    state = page_state(ProjectArgs)
    wait_for_position(state.args.get("min_position"))
    data = page_reads.project(state, pid)
    timeline = [entry(e, data["path"], state.as_of) for e in data["events"]]
    if state.format:
        header, rows = timeline_table(timeline, data["path"])
        return download(state, f"project-{pid}", header, rows, data["reflects"])
    figures = data["project"]
    funding_by_kind = project_funding(page_reads.services(), UUID(pid), state.as_of, state.known_at)
    return render_page(
        "web/project.html",
        state=state,
        facts=[(k, label(k), shown(k, figures[k], figures)) for k in FACTS],
        timeline=timeline,
        ratings=[e for e in timeline if e["type"] == "StatusReported"],
        funding=[e for e in timeline if e["type"] == "FundingAwarded"],
        funding_by_kind=funding_by_kind,
        programme_names={f["programme_id"]: f["programme"] for f in funding_by_kind},
        charts=charts(data["path"], data["events"], money_unit()),
        forms=_forms(pid, figures, data) if not state.known_at else [],
        flashes=get_flashed_messages(),
        **helpers(),
        **data,
    )


def _forms(pid: str, figures: dict[str, Any], data: dict[str, Any]) -> list[Any]:
    """The manager forms, for an admin or a manager of the project's current ministry."""
    who = signed_in()
    if who is None or who.role not in ("admin", "manager"):
        return []
    if who.role == "manager" and data["live_ministry"] not in who.ministries:
        return []
    now = today().isoformat()
    return [build(n, pid, data["version"], defaults(n, figures, now)) for n in COMMANDS]


def timeline_table(
    timeline: list[dict[str, Any]], path: dict[date, dict[str, Any]]
) -> tuple[list[str], list[list[Any]]]:
    """The timeline as the download's rows, each with the project's figures on its date."""
    header = [
        "version",
        "type",
        "effective_date",
        "recorded_at",
        "actor",
        "source",
        "narrative",
        "correction",
        "changes",
        "phase",
        "cost",
        "baseline_cost",
        "planned_end",
        "baseline_end",
        "rating",
        "figures_withheld",
    ]
    rows = []
    for e in timeline:
        after = path.get(e["sort_date"]) or {}
        rows.append(
            [
                e["version"],
                e["type"],
                e["effective_date"],
                e["recorded_at"],
                e["actor"],
                e["source"],
                e["narrative"],
                e["correction"],
                "; ".join(f"{k}: {v}" for k, v in e["changes"]),
                *[after.get(k) for k in header[9:]],
            ]
        )
    return header, rows
