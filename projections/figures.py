"""Derived figures of DESIGN.md, computed for the query date (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from projections.state import ProjectState

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
DAYS_PER_YEAR = Decimal("365.25")
FINISHED_PHASE = "Terminé"
CADRAGE = "Cadrage"


def q2(value: Decimal | None) -> Decimal | None:
    """Round half-even to two decimal places."""
    return None if value is None else value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def published_cost(state: ProjectState) -> Decimal | None:
    """The current cost, unless the project's figures are withheld."""
    return None if state.figures_withheld else state.current_cost


def budget_drift(state: ProjectState) -> Decimal | None:
    """(current cost − baseline cost) / baseline cost × 100, unrounded."""
    cost, base = published_cost(state), state.baseline_cost
    if cost is None or base is None or state.figures_withheld:
        return None
    return (cost - base) / base * HUNDRED


def schedule_drift(state: ProjectState) -> Decimal | None:
    """(current planned end − baseline end) / (baseline end − start) × 100, unrounded."""
    start, base, end = state.start_date, state.baseline_end, state.planned_end
    if start is None or base is None or end is None or base <= start:
        return None
    return Decimal((end - base).days) / Decimal((base - start).days) * HUNDRED


def duration_years(state: ProjectState) -> Decimal | None:
    """Planned duration from start to current planned end, in years of 365.25 days."""
    if state.start_date is None or state.planned_end is None:
        return None
    return Decimal((state.planned_end - state.start_date).days) / DAYS_PER_YEAR


def cost_variance(state: ProjectState) -> Decimal | None:
    """IT Dashboard CV%: (planned − projected) / planned × 100; positive is under budget."""
    drift = budget_drift(state)
    return None if drift is None else -drift


def schedule_variance(state: ProjectState, as_of: date) -> Decimal | None:
    """IT Dashboard SV%: positive is ahead; a past projected end of an unfinished project
    is replaced by `as_of`."""
    start, base, projected = state.start_date, state.baseline_end, state.planned_end
    if start is None or base is None or projected is None or base <= start:
        return None
    finished = state.closed or state.phase == FINISHED_PHASE
    if projected < as_of and not finished:
        projected = as_of
    return Decimal((base - projected).days) / Decimal((base - start).days) * HUNDRED


def project_figures(state: ProjectState, as_of: date) -> dict[str, Any]:
    """The public view of one project with its derived figures."""
    withheld = state.figures_withheld
    return {
        "id": state.project_id,
        "version": state.version,
        "valid_from": state.valid_from,
        "name": state.name,
        "ministry_code": state.ministry_code,
        "ministry_name": state.ministry_name,
        "description": state.description,
        "interministerial": state.interministerial,
        "functional_zone": state.functional_zone,
        "programmes": list(state.programmes),
        "links": list(state.links),
        "start_date": state.start_date,
        "phase": state.phase,
        "registered_on": state.registered_on,
        "cost": None if withheld else state.current_cost,
        "baseline_cost": None if withheld else state.baseline_cost,
        "budget_drift_pct": q2(budget_drift(state)),
        "planned_end": state.planned_end,
        "baseline_end": state.baseline_end,
        "schedule_drift_pct": q2(schedule_drift(state)),
        "duration_years": q2(duration_years(state)),
        "cv_pct": q2(cost_variance(state)),
        "sv_pct": q2(schedule_variance(state, as_of)),
        "rating": state.rating,
        "funding_received": state.funding_received,
        "in_portfolio": state.in_portfolio,
        "figures_withheld": withheld,
        "closed": state.closed,
        "outcome": state.outcome,
    }


@dataclass
class Totals:
    """Accumulates the panorama's portfolio figures over a set of project states."""

    projects: int = 0
    interministerial_projects: int = 0
    costed_projects: int = 0
    total_cost: Decimal = Decimal(0)
    total_cost_engaged: Decimal = Decimal(0)
    durations: list[Decimal] = field(default_factory=list)
    schedule_drifts: list[Decimal] = field(default_factory=list)
    budget_drifts: list[Decimal] = field(default_factory=list)

    def add(self, facts: Facts) -> None:
        interministerial, cost, engaged, duration, schedule, budget = facts
        self.projects += 1
        self.interministerial_projects += interministerial
        if cost is not None:
            self.costed_projects += 1
            self.total_cost += cost
            if engaged:
                self.total_cost_engaged += cost
        if duration is not None:
            self.durations.append(duration)
        if schedule is not None:
            self.schedule_drifts.append(schedule)
        if budget is not None:
            self.budget_drifts.append(budget)

    def as_dict(self) -> dict[str, Any]:
        return {
            "projects": self.projects,
            "interministerial_projects": self.interministerial_projects,
            "costed_projects": self.costed_projects,
            "total_cost": self.total_cost,
            "total_cost_engaged": self.total_cost_engaged,
            "mean_duration_years": _mean(self.durations),
            "mean_schedule_drift_pct": _mean(self.schedule_drifts),
            "mean_budget_drift_pct": _mean(self.budget_drifts),
        }


Facts = tuple[bool, Decimal | None, bool, Decimal | None, Decimal | None, Decimal | None]


def facts(state: ProjectState) -> Facts:
    """What one project contributes to the portfolio figures, computed once."""
    in_cadrage = state.phase == CADRAGE
    return (
        bool(state.interministerial),
        published_cost(state),
        not in_cadrage,
        # The panorama publishes no duration for a project in Cadrage ("En cadrage").
        None if in_cadrage else duration_years(state),
        schedule_drift(state),
        budget_drift(state),
    )


def _mean(values: list[Decimal]) -> Decimal | None:
    return q2(sum(values, Decimal(0)) / len(values)) if values else None


def portfolio_summary(states: Iterable[ProjectState]) -> dict[str, Any]:
    """Portfolio figures over the projects followed, overall and by ministry and phase."""
    overall = Totals()
    by_ministry: dict[str, Totals] = {}
    by_phase: dict[str, Totals] = {}
    for state in states:
        if not state.in_portfolio:
            continue
        contribution = facts(state)
        overall.add(contribution)
        by_ministry.setdefault(state.ministry_code, Totals()).add(contribution)
        by_phase.setdefault(state.phase, Totals()).add(contribution)
    return {
        **overall.as_dict(),
        "by_ministry": {k: v.as_dict() for k, v in sorted(by_ministry.items())},
        "by_phase": {k: v.as_dict() for k, v in sorted(by_phase.items())},
    }
