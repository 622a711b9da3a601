"""`/compare?from=&to=`: what changed in the portfolio between two dates, and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_babel import gettext
from marshmallow import ValidationError, validates_schema

import service.web.reads as reads
from service.csv_export import changes_table
from service.errors import Problem
from service.query_schemas import CursorField
from service.schemas import IsoDate
from service.web.blueprint import mark, web
from service.web.i18n import currency, day, money
from service.web.pages import download, render_page
from service.web.projects import project_link
from service.web.state import PageArgs, page_state

CAP = 100  # rows shown per list, a page at a time; the downloads hold them all
EVENTS_SHOWN = 5  # events linked per change; the project page's timeline has the rest
SECTIONS = (
    ("entered", mark("Entered the portfolio"), mark("entered")),
    ("left", mark("Left the portfolio"), mark("left")),
    ("phase_changes", mark("Phase moves"), mark("phase moves")),
    ("cost_changes", mark("Cost changes"), mark("cost changes")),
    ("schedule_changes", mark("Schedule changes"), mark("schedule changes")),
)
EVENT_LABELS = {
    "Registered": mark("registered"),
    "DetailsRevised": mark("details revised"),
    "PhaseTransitioned": mark("phase transition"),
    "CostReestimated": mark("cost re-estimate"),
    "ScheduleReestimated": mark("schedule re-estimate"),
    "Rebaselined": mark("rebaseline"),
    "FundingAwarded": mark("funding awarded"),
    "StatusReported": mark("status report"),
    "FiguresWithheld": mark("figures withheld"),
    "FiguresDisclosed": mark("figures disclosed"),
    "LeftPortfolio": mark("left the portfolio"),
    "RejoinedPortfolio": mark("rejoined the portfolio"),
    "Closed": mark("closed"),
    "Reopened": mark("reopened"),
}


@dataclass(frozen=True)
class Section:
    """One kind of change on the page: a page of its list, where it starts, the next one."""

    key: str
    title: str
    legend: str
    rows: list[dict[str, Any]]
    offset: int  # changes of this kind before this page
    next: str | None  # the cursor of the next page


class CompareArgs(PageArgs):
    """The compare page's URL: two dates (no `as_of`), `known_at`, `lang`, `format`."""

    class Meta(PageArgs.Meta):
        exclude = ("as_of",)

    from_ = IsoDate(data_key="from")
    to = IsoDate()
    cursor = CursorField()  # one list's next page

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        if "from_" in data and "to" in data and data["from_"] > data["to"]:
            raise ValidationError("'from' must not be after 'to'", field_name="from")


@web.route("/compare")
def compare() -> Any:
    """The changes from `from` (default: the previous edition) to `to` (default: today)."""
    state = page_state(CompareArgs)
    until: date = state.args.get("to") or state.as_of
    after: date | None = state.args.get("from_")
    if after is not None and after > until:
        raise Problem(400, f"from: {after} is after to, {until}", field="from")
    if state.format:
        data = reads.compare(state, after, until, None)
        data["reflects"]["from"] = data["after"]
        columns, rows = changes_table(data["changes"], currency())
        return download(state, "changes", columns, rows, data["reflects"])
    data = reads.compare(state, after, until, CAP, state.args.get("cursor"))
    data["reflects"]["from"] = data["after"]
    changes = data["changes"]
    sections = [
        Section(key, title, legend, changes[key], changes["offsets"][key], changes["next"][key])
        for key, title, legend in SECTIONS
    ]
    return render_page(
        "web/compare.html",
        state=state,
        until=until,
        sections=sections,
        counts=changes["counts"],
        cap=CAP,
        shown_value=shown_value,
        event_label=event_label,
        events_shown=EVENTS_SHOWN,
        project_link=project_link,
        **data,
    )


def shown_value(kind: str, value: Any) -> str:
    """A changed value as the page shows it: a phase, an amount, a date."""
    if value is None:
        return "—"
    if kind == "cost_changes":
        return money(value)
    if kind == "schedule_changes":
        return day(value)
    return str(value)


def event_label(event: dict[str, Any]) -> str:
    """An event's kind and effective date, in the page's language."""
    kind = EVENT_LABELS.get(event["type"])
    return gettext(
        "%(kind)s, %(day)s",
        kind=gettext(kind) if kind else event["type"],
        day=day(event["effective_date"]),
    )
