"""An independent oracle: fold a project's events up to a date (the read model is elsewhere)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.application import Portfolio
from importers.matching import project_id
from importers.model import Edition


@dataclass
class State:
    name: str
    phase: str
    cost: Decimal | None
    planned_end: date | None
    interministerial: bool
    in_portfolio: bool = True
    withheld: bool = False
    rating: str | None = None


def fold(events: list[Any], as_of: date) -> State | None:
    """Apply the events whose effective_date <= as_of (same date: recording order)."""
    selected = sorted(
        (e for e in events if e.effective_date <= as_of), key=lambda e: e.effective_date
    )
    if not selected or type(selected[0]).__name__ != "Registered":
        return None
    first = selected[0]
    state = State(first.name, first.phase, first.cost, first.planned_end, first.interministerial)
    for e in selected[1:]:
        kind = type(e).__name__
        if kind == "DetailsRevised":
            state.name = e.changes.get("name", state.name)
            state.interministerial = e.changes.get("interministerial", state.interministerial)
        elif kind == "PhaseTransitioned":
            state.phase = e.phase
        elif kind == "CostReestimated":
            state.cost = e.amount
        elif kind == "ScheduleReestimated":
            state.planned_end = e.planned_end
        elif kind in ("FiguresWithheld", "FiguresDisclosed"):
            state.withheld = kind == "FiguresWithheld"
        elif kind in ("LeftPortfolio", "RejoinedPortfolio"):
            state.in_portfolio = kind == "RejoinedPortfolio"
        elif kind == "StatusReported":
            state.rating = e.rating
    return state


def series_ids(editions: Iterable[Edition]) -> set[UUID]:
    """The ids of every project listed in the editions."""
    return {project_id(e.series, key) for e in editions for key in e.projects}


def portfolio_as_of(portfolio: Portfolio, ids: Iterable[UUID], as_of: date) -> list[State]:
    """The projects in the portfolio on `as_of`, by folding their events."""
    states = []
    for pid in ids:
        state = fold(portfolio.project_events(pid), as_of)
        if state is not None and state.in_portfolio:
            states.append(state)
    return states


def totals(states: list[State]) -> tuple[int, int, Decimal]:
    """(projects, costed projects, sum of the costs) as an edition table shows them."""
    costed = [s.cost for s in states if s.cost is not None and not s.withheld]
    return len(states), len(costed), sum(costed, Decimal(0))


def event_count(portfolio: Portfolio) -> int:
    """How many events the portfolio has recorded."""
    return portfolio.recorder.max_notification_id() or 0
