"""How the project pages show a project: labels, figures ("withheld"), what an event changed."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import gettext

from service.web.blueprint import mark
from service.web.i18n import day, money, percent, years
from service.web.project_forms import RATING_LABELS

MONEY = ("cost", "baseline_cost", "funding_received", "amount")
WITHHELD_KEYS = ("cost", "baseline_cost", "budget_drift_pct")
EVENT_LABELS = {
    "Registered": mark("Registered"),
    "DetailsRevised": mark("Details revised"),
    "PhaseTransitioned": mark("Phase changed"),
    "CostReestimated": mark("Cost re-estimated"),
    "ScheduleReestimated": mark("Planned end re-estimated"),
    "Rebaselined": mark("Rebaselined"),
    "FundingAwarded": mark("Funding awarded"),
    "StatusReported": mark("Rating reported"),
    "FiguresWithheld": mark("Figures withheld"),
    "FiguresDisclosed": mark("Figures disclosed"),
    "LeftPortfolio": mark("Left the portfolio"),
    "RejoinedPortfolio": mark("Rejoined the portfolio"),
    "Closed": mark("Closed"),
    "Reopened": mark("Reopened"),
}
FIELD_LABELS = {
    "name": mark("Name"),
    "ministry_code": mark("Ministry"),
    "ministry_name": mark("Ministry name"),
    "description": mark("Description"),
    "phase": mark("Phase"),
    "previous_phase": mark("Previous phase"),
    "interministerial": mark("Interministerial"),
    "functional_zone": mark("Functional zone"),
    "programmes": mark("Budget programmes"),
    "links": mark("Links"),
    "start_date": mark("Start"),
    "cost": mark("Cost"),
    "amount": mark("Amount"),
    "baseline_cost": mark("Baseline cost"),
    "planned_end": mark("Planned end"),
    "baseline_end": mark("Baseline end"),
    "budget_drift_pct": mark("Budget drift"),
    "schedule_drift_pct": mark("Schedule drift"),
    "duration_years": mark("Duration"),
    "rating": mark("Rating"),
    "funding_received": mark("Funding received"),
    "in_portfolio": mark("In the portfolio"),
    "figures_withheld": mark("Figures withheld"),
    "closed": mark("Closed"),
    "outcome": mark("Outcome"),
    "approver": mark("Approver"),
    "reason": mark("Reason"),
    "call": mark("Call"),
    "programme_id": mark("Programme"),
}
FACTS = (
    "ministry_code",
    "phase",
    "interministerial",
    "start_date",
    "cost",
    "baseline_cost",
    "budget_drift_pct",
    "planned_end",
    "baseline_end",
    "schedule_drift_pct",
    "duration_years",
    "rating",
    "funding_received",
    "in_portfolio",
    "closed",
)
LONG_TEXT = 160


def label(key: str) -> str:
    """A field's name in the page's language."""
    return gettext(FIELD_LABELS.get(key, key))


def shown(key: str, value: Any, figures: dict[str, Any] | None = None) -> str:
    """A figure as the page shows it ("withheld" while the figures are withheld)."""
    if figures is not None and figures.get("figures_withheld") and key in WITHHELD_KEYS:
        return gettext("withheld")
    if value is None:
        return "—"
    if key in MONEY:
        return money(value)
    if key.endswith("_pct"):
        return percent(value)
    if key == "duration_years":
        return years(value)
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, date):
        return day(value)
    if key == "rating":
        return rating_label(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    text = str(value)
    return text if len(text) <= LONG_TEXT else text[: LONG_TEXT - 1] + "…"


def rating_label(rating: str | None) -> str:
    return "—" if rating is None else gettext(RATING_LABELS.get(rating, rating))


def rating_class(rating: str | None) -> str:
    return "rating rating-" + (rating or "none").lower().replace("/", "-")


def changes(event: dict[str, Any], withheld: bool) -> list[tuple[str, str]]:
    """What an event changed, as (field, value) pairs; amounts withheld while withheld."""
    payload = dict(event.get("payload") or {})
    if event["type"] == "DetailsRevised":
        payload = dict(payload.get("changes") or {})
    if event["type"] == "Registered":
        payload = {
            k: payload.get(k)
            for k in ("ministry_code", "phase", "start_date", "cost", "planned_end")
        }
    pairs = []
    for key, value in payload.items():
        if (
            key in MONEY
            and withheld
            and key != "funding_received"
            and event["type"] != "FundingAwarded"
        ):
            pairs.append((label(key), gettext("withheld")))
        elif key == "description":
            pairs.append((label(key), gettext("revised")))
        else:
            pairs.append((label(key), shown(key, value)))
    return pairs


def entry(event: dict[str, Any], path: dict[date, dict[str, Any]], as_of: date) -> dict[str, Any]:
    """One event of the timeline as the page lists it."""
    after = path.get(event["sort_date"]) or {}
    return {
        **event,
        "label": gettext(EVENT_LABELS.get(event["type"], event["type"])),
        "changes": changes(event, bool(after.get("figures_withheld"))),
        "after_as_of": event["sort_date"] > as_of,
        "amount_shown": money(event.get("payload", {}).get("amount")),
    }


def event_label(event: dict[str, Any]) -> str:
    """An event's kind in the page's language."""
    return gettext(EVENT_LABELS.get(event["type"], event["type"]))


def helpers() -> dict[str, Any]:
    """The functions the project templates call."""
    return {
        "event_label": event_label,
        "event_changes": lambda e: changes(e, withheld=False),
        "project_shown": lambda key, figures: shown(key, figures.get(key), figures),
        "shown": shown,
        "label": label,
        "rating_class": rating_class,
        "rating_label": rating_label,
    }
