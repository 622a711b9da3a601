"""The project page's two charts: cost and planned end over time, baseline against current."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from flask_babel import gettext

from service.web.i18n import MILLION, day, money

SERIES = {
    "cost": ("baseline_cost", "cost"),
    "schedule": ("baseline_end", "planned_end"),
}


def rebaselines(events: list[dict[str, Any]], key: str) -> list[date]:
    """The dates of the rebaselines that set `key` (baseline_cost or baseline_end)."""
    return [
        e["sort_date"]
        for e in events
        if e["type"] == "Rebaselined" and (e.get("payload") or {}).get(key) is not None
    ]


def rows(
    path: dict[date, dict[str, Any]], events: list[dict[str, Any]], chart: str
) -> list[dict[str, Any]]:
    """The chart's table: on each date of a change, the baseline, the current, a rebaseline?"""
    base_key, current_key = SERIES[chart]
    marks = set(rebaselines(events, base_key))
    return [
        {
            "day": d,
            "baseline": f.get(base_key),
            "current": f.get(current_key),
            "withheld": bool(f.get("figures_withheld")) and chart == "cost",
            "rebaseline": d in marks,
        }
        for d, f in sorted(path.items())
    ]


def _value(value: Any, chart: str) -> str | None:
    if value is None:
        return None
    if chart == "cost":
        return str((Decimal(value) / MILLION).quantize(Decimal("0.01")))
    return str(value.isoformat())


def _shown(value: Any, chart: str) -> str:
    return money(value) if chart == "cost" else day(value)


def spec(
    path: dict[date, dict[str, Any]], events: list[dict[str, Any]], chart: str, unit: str
) -> dict[str, Any]:
    """A `steps` chart for panorama.js: two series over dates, rebaselines marked."""
    table = rows(path, events, chart)
    marks = [r["day"] for r in table if r["rebaseline"]]
    series = [
        (gettext("Baseline"), "baseline"),
        (gettext("Current") if chart == "cost" else gettext("Planned end"), "current"),
    ]
    return {
        "kind": "steps",
        "unit": "money" if chart == "cost" else "date",
        "axis_name": unit if chart == "cost" else "",
        "series": [
            {
                "name": name,
                "points": [[r["day"].isoformat(), _value(r[key], chart)] for r in table],
            }
            for name, key in series
        ],
        "marks": [{"at": d.isoformat(), "label": gettext("Rebaseline")} for d in marks],
        "description": _describe(table, chart, len(marks)),
    }


def _describe(table: list[dict[str, Any]], chart: str, rebaselined: int) -> str:
    known = [r for r in table if r["current"] is not None and not r["withheld"]]
    if not known:
        return gettext("No figure is published for this project.")
    first, last = known[0], known[-1]
    what = gettext("The cost") if chart == "cost" else gettext("The planned end")
    text = gettext(
        "%(what)s went from %(a)s on %(day_a)s to %(b)s on %(day_b)s; baseline %(base)s.",
        what=what,
        a=_shown(first["current"], chart),
        day_a=day(first["day"]),
        b=_shown(last["current"], chart),
        day_b=day(last["day"]),
        base=_shown(last["baseline"], chart) if last["baseline"] is not None else "—",
    )
    if table[-1]["withheld"]:
        text += " " + gettext(
            "The figures are withheld since %(day)s.", day=day(_withheld_since(table))
        )
    if rebaselined:
        text += " " + gettext("Rebaselines: %(n)s.", n=rebaselined)
    else:
        text += " " + gettext("No rebaseline.")
    return text


def _withheld_since(table: list[dict[str, Any]]) -> date:
    since = table[-1]["day"]
    for r in reversed(table):
        if not r["withheld"]:
            break
        since = r["day"]
    return since


def charts(
    path: dict[date, dict[str, Any]], events: list[dict[str, Any]], unit: str
) -> dict[str, dict[str, Any]]:
    """Both charts of the page."""
    return {
        name: {"spec": spec(path, events, name, unit), "rows": rows(path, events, name)}
        for name in SERIES
    }
