"""Derived figures of DESIGN.md, computed for the query date (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple

from projections.state import ProjectState

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
DAYS_PER_YEAR = Decimal(365)  # the year the importers turn published durations into days with
FINISHED_PHASE = "Terminé"
CADRAGE = "Cadrage"


def q2(value: Decimal | None) -> Decimal | None:
    """Round half-even to two decimal places."""
    return None if value is None else value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def published_cost(state: ProjectState) -> Decimal | None:
    """The current cost, unless the project's figures are withheld."""
    return None if state.figures_withheld else state.current_cost


def published_baseline_cost(state: ProjectState) -> Decimal | None:
    """The baseline cost, unless the project's figures are withheld."""
    return None if state.figures_withheld else state.baseline_cost


def published_ends(state: ProjectState) -> tuple[date | None, date | None]:
    """(current planned end, baseline end), both None while the figures are withheld."""
    if state.figures_withheld:
        return None, None
    return state.planned_end, state.baseline_end


def budget_drift(state: ProjectState) -> Decimal | None:
    """(current cost − baseline cost) / baseline cost × 100, unrounded."""
    cost, base = published_cost(state), published_baseline_cost(state)
    if cost is None or base is None:
        return None
    return (cost - base) / base * HUNDRED


def schedule_slip(state: ProjectState) -> tuple[int, int] | None:
    """(days from baseline end to planned end, days from start to baseline end), published."""
    start, (end, base) = state.start_date, published_ends(state)
    if start is None or base is None or end is None or base <= start:
        return None
    return (end - base).days, (base - start).days


def schedule_drift(state: ProjectState) -> Decimal | None:
    """(current planned end − baseline end) / (baseline end − start) × 100, unrounded."""
    slip = schedule_slip(state)
    return None if slip is None else Decimal(slip[0]) / Decimal(slip[1]) * HUNDRED


def duration_years(state: ProjectState) -> Decimal | None:
    """Planned duration from start to current planned end, in years of 365 days."""
    end, _ = published_ends(state)
    if state.start_date is None or end is None:
        return None
    return Decimal((end - state.start_date).days) / DAYS_PER_YEAR


def cost_variance(state: ProjectState) -> Decimal | None:
    """IT Dashboard CV%: (planned − projected) / planned × 100; positive is under budget."""
    drift = budget_drift(state)
    return None if drift is None else -drift


def schedule_variance(state: ProjectState, as_of: date) -> Decimal | None:
    """IT Dashboard SV%: positive is ahead; a past projected end of an unfinished project
    is replaced by `as_of`."""
    start, (projected, base) = state.start_date, published_ends(state)
    if start is None or base is None or projected is None or base <= start:
        return None
    finished = state.closed or state.phase == FINISHED_PHASE
    if projected < as_of and not finished:
        projected = as_of
    return Decimal((base - projected).days) / Decimal((base - start).days) * HUNDRED


def project_figures(state: ProjectState, as_of: date) -> dict[str, Any]:
    """The public view of one project with its derived figures."""
    withheld = state.figures_withheld
    planned_end, baseline_end = published_ends(state)
    return {
        "id": state.project_id,
        "version": state.version,
        "valid_from": state.valid_from,
        "name": state.name,
        "ministry_code": state.ministry,
        "published_ministry_code": state.ministry_code,
        "ministry_name": state.ministry_name,
        "description": state.description,
        "interministerial": state.interministerial,
        "functional_zone": state.functional_zone,
        "programmes": list(state.programmes),
        "links": list(state.links),
        "start_date": state.start_date,
        "phase": state.phase,
        "registered_on": state.registered_on,
        "cost": published_cost(state),
        "baseline_cost": published_baseline_cost(state),
        "budget_drift_pct": q2(budget_drift(state)),
        "planned_end": planned_end,
        "baseline_end": baseline_end,
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


class Facts(NamedTuple):
    """What one project contributes to the portfolio figures, computed once."""

    interministerial: bool
    cost: Decimal | None
    engaged: bool
    duration: Decimal | None
    schedule: tuple[int, int] | None  # (slip days, baseline span days)
    budget: tuple[Decimal, Decimal] | None  # (current cost, baseline cost)


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
    slip_days: int = 0
    baseline_span_days: int = 0
    drifting_cost: Decimal = Decimal(0)
    drifting_baseline_cost: Decimal = Decimal(0)

    def add(self, facts: Facts) -> None:
        self.projects += 1
        self.interministerial_projects += facts.interministerial
        if facts.cost is not None:
            self.costed_projects += 1
            self.total_cost += facts.cost
            if facts.engaged:
                self.total_cost_engaged += facts.cost
        if facts.duration is not None:
            self.durations.append(facts.duration)
        if facts.schedule is not None:
            slip, span = facts.schedule
            self.schedule_drifts.append(Decimal(slip) / Decimal(span) * HUNDRED)
            self.slip_days += slip
            self.baseline_span_days += span
        if facts.budget is not None:
            cost, base = facts.budget
            self.budget_drifts.append((cost - base) / base * HUNDRED)
            self.drifting_cost += cost
            self.drifting_baseline_cost += base

    def as_dict(self) -> dict[str, Any]:
        return {
            "projects": self.projects,
            "interministerial_projects": self.interministerial_projects,
            "costed_projects": self.costed_projects,
            "total_cost": self.total_cost,
            "total_cost_engaged": self.total_cost_engaged,
            "mean_duration_years": _mean(self.durations),
            "mean_schedule_drift_pct": _mean(self.schedule_drifts),
            "median_schedule_drift_pct": _median(self.schedule_drifts),
            "weighted_schedule_drift_pct": _ratio_pct(
                Decimal(self.slip_days), Decimal(self.baseline_span_days)
            ),
            "mean_budget_drift_pct": _mean(self.budget_drifts),
            "median_budget_drift_pct": _median(self.budget_drifts),
            "weighted_budget_drift_pct": _ratio_pct(
                self.drifting_cost - self.drifting_baseline_cost, self.drifting_baseline_cost
            ),
        }


def facts(state: ProjectState) -> Facts:
    """What one project contributes to the portfolio figures (nothing withheld)."""
    in_cadrage = state.phase == CADRAGE
    cost, base = published_cost(state), published_baseline_cost(state)
    return Facts(
        interministerial=bool(state.interministerial),
        cost=cost,
        engaged=not in_cadrage,
        # The panorama publishes no duration for a project in Cadrage ("En cadrage").
        duration=None if in_cadrage else duration_years(state),
        schedule=schedule_slip(state),
        budget=None if cost is None or base is None else (cost, base),
    )


def _mean(values: list[Decimal]) -> Decimal | None:
    return q2(sum(values, Decimal(0)) / len(values)) if values else None


def _median(values: list[Decimal]) -> Decimal | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return q2(ordered[middle])
    return q2((ordered[middle - 1] + ordered[middle]) / 2)


def _ratio_pct(part: Decimal, whole: Decimal) -> Decimal | None:
    """part / whole × 100, rounded; None over nothing."""
    return q2(part / whole * HUNDRED) if whole else None


def portfolio_summary(states: Iterable[ProjectState]) -> dict[str, Any]:
    """Portfolio figures over the projects followed, overall and by ministry and phase.

    A ministry is counted under its stable code with its current name (the reference's),
    whatever code each edition published it under.
    """
    overall = Totals()
    by_ministry: dict[str, Totals] = {}
    names: dict[str, str | None] = {}
    by_phase: dict[str, Totals] = {}
    for state in states:
        if not state.in_portfolio:
            continue
        contribution = facts(state)
        overall.add(contribution)
        by_ministry.setdefault(state.ministry, Totals()).add(contribution)
        names.setdefault(state.ministry, state.ministry_reference_name or state.ministry_name)
        by_phase.setdefault(state.phase, Totals()).add(contribution)
    return {
        **overall.as_dict(),
        "by_ministry": {
            k: {"name": names[k], **v.as_dict()} for k, v in sorted(by_ministry.items())
        },
        "by_phase": {k: v.as_dict() for k, v in sorted(by_phase.items())},
    }
