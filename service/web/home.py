"""`/`: the portfolio on a date, its key figures, editions and charts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import request
from flask_babel import gettext

from service.csv_export import summary_table
from service.web.blueprint import web
from service.web.i18n import MILLION, currency, day, money, number, percent, years
from service.web.pages import download, render_page
from service.web.reads import home as read_home
from service.web.reads import timeline as read_timeline
from service.web.state import page_state

BAND = (
    ("projects", "count"),
    ("interministerial_projects", "count"),
    ("total_cost_engaged", "money"),
    ("mean_duration_years", "years"),
    ("mean_schedule_drift_pct", "percent"),
    ("mean_budget_drift_pct", "percent"),
)
TIMELINE = BAND


@web.route("/")
def home() -> Any:
    """The portfolio on `as_of` (default today), as known at `known_at`."""
    state = page_state()
    data = read_home(state)
    if state.format:
        return download(
            state, "portfolio", *summary_table(data["summary"], currency()), data["reflects"]
        )
    helpers = {"band": BAND, "shown": shown, "figure_label": figure_label}
    timeline_args = {k: v for k in ("known_at", "lang") if (v := request.args.get(k))}
    return render_page(
        "web/home.html",
        state=state,
        charts=charts(data),
        timeline_args=timeline_args,
        **helpers,
        **data,
    )


@web.route("/editions/figures")
def edition_figures() -> Any:
    """The key figures over every edition: a region of `/` (htmx), or a page of its own."""
    state = page_state()
    data = read_timeline(state)
    if state.format:
        return download(state, "editions", *timeline_table(data["timeline"]), data["reflects"])
    helpers = {"band": BAND, "shown": shown, "figure_label": figure_label}
    template = "web/partials/timeline.html" if request.headers.get("HX-Request") else None
    spec = timeline_chart(data["timeline"])
    if template:
        return render_page(template, state=state, timeline_spec=spec, **helpers, **data)
    return render_page("web/editions.html", state=state, timeline_spec=spec, **helpers, **data)


def timeline_table(timeline: list[Any]) -> tuple[list[str], list[list[Any]]]:
    """The editions' key figures as the download's rows."""
    keys = [key for key, _ in TIMELINE]
    rows = [[e["date"], e["source"], *[f[k] for k in keys]] for e, f in timeline]
    return ["edition", "source", *keys], rows


def shown(value: Any, kind: str) -> str:
    """A figure as the band shows it."""
    if kind == "money":
        return money(value)
    if kind == "years":
        return years(value)
    if kind == "percent":
        return percent(value)
    return number(value)


def money_unit() -> str:
    """The unit of amounts in millions on a chart's axis: M€, £m."""
    return money(MILLION).replace(number(1, 2), "").strip()


def _millions(value: Any) -> str:
    return str((Decimal(value) / MILLION).quantize(Decimal("0.01")))


def charts(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The charts' data (drawn by panorama.js), each with its text description."""
    summary = data["summary"]
    ministries = sorted(summary["by_ministry"].items(), key=lambda kv: -kv[1]["total_cost"])
    phases = list(summary["by_phase"].items())
    drift = data["drift"]
    return {
        "cost_by_ministry": {
            "kind": "bar",
            "unit": "money",
            "axis_name": money_unit(),
            "categories": [code for code, _ in ministries],
            "series": [
                {
                    "name": gettext("Cost"),
                    "values": [_millions(f["total_cost"]) for _, f in ministries],
                }
            ],
            "description": _describe_ministries(ministries),
        },
        "projects_by_phase": {
            "kind": "bar",
            "unit": "count",
            "categories": [phase for phase, _ in phases],
            "series": [{"name": gettext("Projects"), "values": [f["projects"] for _, f in phases]}],
            "description": "; ".join(
                gettext("%(phase)s: %(n)s", phase=phase, n=number(f["projects"]))
                for phase, f in phases
            ),
        },
        "budget_drift": {
            "kind": "bar",
            "unit": "count",
            "categories": [_band_label(low, high) for low, high, _ in drift["bands"]],
            "series": [{"name": gettext("Projects"), "values": [n for _, _, n in drift["bands"]]}],
            "median": None if drift["median"] is None else str(drift["median"]),
            "median_band": _median_band(drift),
            "median_label": gettext("Median"),
            "description": gettext(
                "%(n)s projects have a budget drift; the median drift is %(median)s.",
                n=number(drift["count"]),
                median=percent(drift["median"]),
            ),
        },
    }


def timeline_chart(timeline: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """The chart of the key figures over every edition (a line per figure)."""
    return {
        "kind": "multiples",
        "categories": [day(e["date"]) for e, _ in timeline],
        "series": [
            {
                "name": figure_label(key),
                "unit": kind,
                "values": [
                    None
                    if f[key] is None
                    else (_millions(f[key]) if kind == "money" else str(f[key]))
                    for _, f in timeline
                ],
            }
            for key, kind in TIMELINE
        ],
        "description": _describe_timeline(timeline),
    }


def figure_label(key: str) -> str:
    """The name of a key figure, in the page's language."""
    labels = {
        "projects": gettext("Projects followed"),
        "interministerial_projects": gettext("Interministerial projects"),
        "total_cost_engaged": gettext("Cost engaged"),
        "mean_duration_years": gettext("Mean duration"),
        "mean_schedule_drift_pct": gettext("Mean schedule drift"),
        "mean_budget_drift_pct": gettext("Mean budget drift"),
    }
    return labels[key]


def _band_label(low: int, high: int | None) -> str:
    if high is None:
        return gettext("%(low)s and more", low=percent(low, 0))
    return gettext("%(low)s to %(high)s", low=percent(low, 0), high=percent(high, 0))


def _median_band(drift: dict[str, Any]) -> int | None:
    median = drift["median"]
    if median is None:
        return None
    for index, (low, high, _) in enumerate(drift["bands"]):
        if median >= low and (high is None or median < high):
            return index
    return None


def _describe_ministries(ministries: list[tuple[str, dict[str, Any]]]) -> str:
    if not ministries:
        return gettext("No project is followed on this date.")
    code, top = ministries[0]
    return gettext(
        "%(n)s ministries; the largest cost is %(ministry)s's, %(cost)s.",
        n=number(len(ministries)),
        ministry=code,
        cost=money(top["total_cost"]),
    )


def _describe_timeline(timeline: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    if not timeline:
        return gettext("No edition has been imported.")
    (first, a), (last, b) = timeline[0], timeline[-1]
    return gettext(
        "%(n)s editions, from %(first)s to %(last)s: %(a)s projects followed, then %(b)s.",
        n=number(len(timeline)),
        first=day(first["date"]),
        last=day(last["date"]),
        a=number(a["projects"]),
        b=number(b["projects"]),
    )
