"""Derived figures of DESIGN.md, computed for the query date (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
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


def duration_days(state: ProjectState) -> int | None:
    """Planned duration from start to current planned end, in days."""
    end, _ = published_ends(state)
    if state.start_date is None or end is None:
        return None
    return (end - state.start_date).days


def duration_years(state: ProjectState) -> Decimal | None:
    """Planned duration from start to current planned end, in years of 365 days."""
    days = duration_days(state)
    return None if days is None else Decimal(days) / DAYS_PER_YEAR


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
    duration_days: int | None
    schedule: tuple[int, int] | None  # (slip days, baseline span days)
    budget: tuple[Decimal, Decimal] | None  # (current cost, baseline cost)


# A per-project drift is kept to a fixed number of decimal places (half-even), computed
# exactly: PostgreSQL's `round(numeric, 20)` gives the same digits, so a sum of drifts is the
# same whether Python or SQL adds them (means are sums / counts, see `SUMS`).
DRIFT_PLACES = 20
DRIFT_QUANTUM = Decimal(1).scaleb(-DRIFT_PLACES)
_EXACT = Context(prec=120)


def drift_pct(part: Decimal | int, whole: Decimal | int) -> Decimal:
    """part / whole × 100, rounded half-even to DRIFT_PLACES decimals (exact before that)."""
    with localcontext(_EXACT):
        return (Decimal(part) * HUNDRED / Decimal(whole)).quantize(
            DRIFT_QUANTUM, rounding=ROUND_HALF_EVEN
        )


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    """The exact sum (no rounding to the 28 digits of the default context)."""
    with localcontext(_EXACT):
        return sum(values, Decimal(0))


# What a set of projects adds up to: the portfolio figures are functions of these sums (plus
# the medians, which do not decompose). A project contributes one `Contribution` (same
# fields); the materialised tables (projections/figure_tables.py) keep these sums per day.
SUMS: tuple[str, ...] = (
    "projects",
    "interministerial",
    "costed",
    "cost",
    "engaged_cost",
    "durations",
    "duration_days",
    "schedules",
    "schedule_drift",
    "slip_days",
    "span_days",
    "budgets",
    "budget_drift",
    "drifting_cost",
    "drifting_base",
)
MONEY_SUMS = frozenset(
    {"cost", "engaged_cost", "schedule_drift", "budget_drift", "drifting_cost", "drifting_base"}
)


def contribution(state: ProjectState) -> tuple[Any, ...] | None:
    """One project's contribution to the sums (in SUMS order); None when not followed."""
    if not state.in_portfolio:
        return None
    f = facts(state)
    zero = Decimal(0)
    cost = f.cost if f.cost is not None else zero
    slip, span = f.schedule if f.schedule is not None else (0, 0)
    spent, base = f.budget if f.budget is not None else (zero, zero)
    return (
        1,
        int(f.interministerial),
        int(f.cost is not None),
        cost,
        cost if f.engaged else zero,
        int(f.duration_days is not None),
        f.duration_days or 0,
        int(f.schedule is not None),
        drift_pct(slip, span) if f.schedule is not None else zero,
        slip,
        span,
        int(f.budget is not None),
        drift_pct(spent - base, base) if f.budget is not None else zero,
        spent,
        base,
    )


@dataclass
class Medians:
    """The middle values of a set of drifts: (lower middle, upper middle, how many)."""

    lo: Decimal | None = None
    hi: Decimal | None = None
    count: int = 0

    @classmethod
    def of(cls, values: list[Decimal]) -> Medians:
        if not values:
            return cls()
        ordered = sorted(values)
        n = len(ordered)
        return cls(ordered[(n - 1) // 2], ordered[n // 2], n)

    def value(self) -> Decimal | None:
        if not self.count or self.lo is None or self.hi is None:
            return None
        if self.count % 2:
            return q2(self.lo)
        return q2((self.lo + self.hi) / 2)


def figures_of(
    sums: dict[str, Any], schedule: Medians | None, budget: Medians | None
) -> dict[str, Any]:
    """The portfolio figures of some projects from their sums and medians."""
    durations, schedules, budgets = sums["durations"], sums["schedules"], sums["budgets"]
    base = Decimal(sums["drifting_base"])
    return {
        "projects": int(sums["projects"]),
        "interministerial_projects": int(sums["interministerial"]),
        "costed_projects": int(sums["costed"]),
        "total_cost": Decimal(sums["cost"]),
        "total_cost_engaged": Decimal(sums["engaged_cost"]),
        "mean_duration_years": (
            q2(Decimal(sums["duration_days"]) / (DAYS_PER_YEAR * durations)) if durations else None
        ),
        "mean_schedule_drift_pct": (
            q2(Decimal(sums["schedule_drift"]) / schedules) if schedules else None
        ),
        "median_schedule_drift_pct": schedule.value() if schedule else None,
        "weighted_schedule_drift_pct": _ratio_pct(
            Decimal(sums["slip_days"]), Decimal(sums["span_days"])
        ),
        "mean_budget_drift_pct": q2(Decimal(sums["budget_drift"]) / budgets) if budgets else None,
        "median_budget_drift_pct": budget.value() if budget else None,
        "weighted_budget_drift_pct": _ratio_pct(Decimal(sums["drifting_cost"]) - base, base),
    }


@dataclass
class Totals:
    """Accumulates the panorama's portfolio figures over a set of project states."""

    sums: list[Any] = field(default_factory=lambda: [0] * len(SUMS))
    schedule_drifts: list[Decimal] = field(default_factory=list)
    budget_drifts: list[Decimal] = field(default_factory=list)

    def add(self, values: tuple[Any, ...]) -> None:
        """Add one project's `contribution`."""
        with localcontext(_EXACT):
            self.sums = [a + b for a, b in zip(self.sums, values, strict=True)]
        if values[_SCHEDULES]:
            self.schedule_drifts.append(values[_SCHEDULES + 1])
        if values[_BUDGETS]:
            self.budget_drifts.append(values[_BUDGETS + 1])

    def as_dict(self) -> dict[str, Any]:
        return figures_of(
            dict(zip(SUMS, self.sums, strict=True)),
            Medians.of(self.schedule_drifts),
            Medians.of(self.budget_drifts),
        )


_SCHEDULES, _BUDGETS = SUMS.index("schedules"), SUMS.index("budgets")


def facts(state: ProjectState) -> Facts:
    """What one project contributes to the portfolio figures (nothing withheld)."""
    in_cadrage = state.phase == CADRAGE
    cost, base = published_cost(state), published_baseline_cost(state)
    return Facts(
        interministerial=bool(state.interministerial),
        cost=cost,
        engaged=not in_cadrage,
        # The panorama publishes no duration for a project in Cadrage ("En cadrage").
        duration_days=None if in_cadrage else duration_days(state),
        schedule=schedule_slip(state),
        budget=None if cost is None or base is None else (cost, base),
    )


def _ratio_pct(part: Decimal, whole: Decimal) -> Decimal | None:
    """part / whole × 100, rounded; None over nothing."""
    return q2(part / whole * HUNDRED) if whole else None


def portfolio_summary(states: Iterable[ProjectState]) -> dict[str, Any]:
    """Portfolio figures over the projects followed, overall and by ministry and phase.

    A ministry is counted under its stable code with its current name (the reference's; a
    code the reference lacks takes the first, alphabetically, of the names it was recorded
    with), whatever code each edition published it under.
    """
    overall = Totals()
    by_ministry: dict[str, Totals] = {}
    names: dict[str, set[str]] = {}
    by_phase: dict[str, Totals] = {}
    for state in states:
        values = contribution(state)
        if values is None:
            continue
        overall.add(values)
        by_ministry.setdefault(state.ministry, Totals()).add(values)
        name = state.ministry_reference_name or state.ministry_name
        names.setdefault(state.ministry, set()).update([name] if name else [])
        by_phase.setdefault(state.phase, Totals()).add(values)
    return {
        **overall.as_dict(),
        "by_ministry": {
            k: {"name": min(names[k], default=None), **v.as_dict()}
            for k, v in sorted(by_ministry.items())
        },
        "by_phase": {k: v.as_dict() for k, v in sorted(by_phase.items())},
    }
