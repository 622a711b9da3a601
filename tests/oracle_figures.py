"""A deliberately plain oracle for the portfolio figures, sharing no code with projections/.

Each project is a plain dict folded from the domain events read back from the notification
log: only the events recorded by `known_at`, dated on or before `as_of` (an event dated
before the registration applies from it), same-date events in recording order. The figures
are then written out as counts, sums and means, as DESIGN.md ("Time") and the README define
them. Means, medians and weighted drifts are exact fractions here; the API rounds them
half-even to two decimals. While a project's figures are withheld it is counted, but none
of its cost or schedule figures is.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from domain.application import Portfolio
from domain.project import Project

CADRAGE = "Cadrage"
PRECISION = Fraction(1, 10**20)  # the API computes with 28-digit decimals

# The project details the figures read, and the oracle's name for each.
DETAILS_READ = {
    "ministry_code": "ministry",
    "interministerial": "interministerial",
    "start_date": "start",
}

# Events that change none of the fields the portfolio figures read.
IGNORED = (Project.FundingAwarded, Project.StatusReported, Project.Closed, Project.Reopened)


def recorded_project_events(portfolio: Portfolio) -> list[tuple[int, Any]]:
    """Every project event in the notification log, with its position, in recording order."""
    found: list[tuple[int, Any]] = []
    log, start, inclusive = portfolio.notification_log, 1, True
    size = log.section_size
    while True:
        page = log.select(start, size, inclusive_of_start=inclusive)
        for notification in page:
            event = portfolio.mapper.to_domain_event(notification)
            if isinstance(event, Project.Registered | Project.Event):
                found.append((notification.id, event))
        if len(page) < size:
            return found
        start, inclusive = page[-1].id, False


def project_on(
    events: list[tuple[int, Any]], as_of: date, known_at: datetime | None
) -> dict[str, Any] | None:
    """One project (its events) on `as_of` as known at `known_at`; None before registration."""
    known = [(pos, e) for pos, e in events if known_at is None or e.timestamp <= known_at]
    registrations = [e for _, e in known if isinstance(e, Project.Registered)]
    if not registrations or registrations[0].effective_date > as_of:
        return None
    registered_on = registrations[0].effective_date
    timeline = []
    for position, event in known:
        day = max(event.effective_date, registered_on)
        if day <= as_of:
            timeline.append((day, position, event))
    timeline.sort(key=lambda entry: (entry[0], entry[1]))
    project: dict[str, Any] = {}
    for _, _, event in timeline:
        apply_event(project, event)
    return project


def apply_event(project: dict[str, Any], event: Any) -> None:
    """How each event changes the fields the figures read, written out again."""
    if isinstance(event, Project.Registered):
        project.update(
            ministry=event.ministry_code,
            interministerial=event.interministerial,
            start=event.start_date,
            phase=event.phase,
            cost=event.cost,
            baseline_cost=event.cost,
            end=event.planned_end,
            baseline_end=event.planned_end,
            followed=True,
            withheld=False,
        )
    elif isinstance(event, Project.DetailsRevised):
        for name, value in event.changes.items():
            if name in DETAILS_READ:
                project[DETAILS_READ[name]] = value
    elif isinstance(event, Project.PhaseTransitioned):
        project["phase"] = event.phase
    elif isinstance(event, Project.CostReestimated):
        project["cost"] = event.amount
        if project["baseline_cost"] is None:
            project["baseline_cost"] = event.amount
    elif isinstance(event, Project.ScheduleReestimated):
        project["end"] = event.planned_end
        if project["baseline_end"] is None:
            project["baseline_end"] = event.planned_end
    elif isinstance(event, Project.Rebaselined):
        if event.baseline_cost is not None:
            project["baseline_cost"] = event.baseline_cost
        if event.baseline_end is not None:
            project["baseline_end"] = event.baseline_end
    elif isinstance(event, Project.FiguresWithheld | Project.FiguresDisclosed):
        project["withheld"] = isinstance(event, Project.FiguresWithheld)
    elif isinstance(event, Project.LeftPortfolio | Project.RejoinedPortfolio):
        project["followed"] = isinstance(event, Project.RejoinedPortfolio)
    elif not isinstance(event, IGNORED):
        raise AssertionError(f"the oracle does not know {type(event).__name__}")


def figures(followed: list[dict[str, Any]]) -> dict[str, Any]:
    """The panorama's figures over some followed projects; means as exact fractions.

    A project whose figures are withheld adds nothing but its count: no cost, duration or
    drift of it is counted. `total_cost_engaged` leaves out Cadrage on every date, as the
    API defines it (DESIGN.md: the panorama's own headline counted Cadrage until July 2018).
    """
    published = [p for p in followed if not p["withheld"]]
    costed = [p for p in published if p["cost"] is not None]
    engaged = [p for p in costed if p["phase"] != CADRAGE]
    durations = [
        Fraction((p["end"] - p["start"]).days, 365)
        for p in published
        if p["phase"] != CADRAGE and p["start"] is not None and p["end"] is not None
    ]
    slipped = [
        p
        for p in published
        if p["start"] is not None
        and p["end"] is not None
        and p["baseline_end"] is not None
        and p["baseline_end"] > p["start"]
    ]
    slips = [(p["end"] - p["baseline_end"]).days for p in slipped]
    spans = [(p["baseline_end"] - p["start"]).days for p in slipped]
    schedule_drifts = [Fraction(slip * 100, span) for slip, span in zip(slips, spans, strict=True)]
    rebudgeted = [p for p in costed if p["baseline_cost"] is not None]
    costs = [Fraction(p["cost"]) for p in rebudgeted]
    baselines = [Fraction(p["baseline_cost"]) for p in rebudgeted]
    budget_drifts = [
        (cost - base) / base * 100 for cost, base in zip(costs, baselines, strict=True)
    ]
    return {
        "projects": len(followed),
        "interministerial_projects": len([p for p in followed if p["interministerial"]]),
        "costed_projects": len(costed),
        "total_cost": sum((p["cost"] for p in costed), Decimal(0)),
        "total_cost_engaged": sum((p["cost"] for p in engaged), Decimal(0)),
        "mean_duration_years": mean(durations),
        "mean_schedule_drift_pct": mean(schedule_drifts),
        "median_schedule_drift_pct": median(schedule_drifts),
        "weighted_schedule_drift_pct": Fraction(sum(slips) * 100, sum(spans)) if spans else None,
        "mean_budget_drift_pct": mean(budget_drifts),
        "median_budget_drift_pct": median(budget_drifts),
        "weighted_budget_drift_pct": (
            (sum(costs) - sum(baselines)) / sum(baselines) * 100 if baselines else None
        ),
    }


def mean(values: list[Fraction]) -> Fraction | None:
    return sum(values, Fraction(0)) / len(values) if values else None


def median(values: list[Fraction]) -> Fraction | None:
    """The middle value, or the mean of the two middle values."""
    if not values:
        return None
    ordered = sorted(values)
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2


def portfolio_figures(
    streams: dict[Any, list[tuple[int, Any]]], as_of: date, known_at: datetime | None
) -> dict[str, Any]:
    """The summary the API must give: overall, by ministry and by phase, projects followed."""
    projects = [project_on(events, as_of, known_at) for events in streams.values()]
    followed = [p for p in projects if p is not None and p["followed"]]
    by_ministry: dict[str, list[dict[str, Any]]] = {}
    by_phase: dict[str, list[dict[str, Any]]] = {}
    for p in followed:
        by_ministry.setdefault(p["ministry"], []).append(p)
        by_phase.setdefault(p["phase"], []).append(p)
    return {
        **figures(followed),
        "by_ministry": {k: figures(v) for k, v in by_ministry.items()},
        "by_phase": {k: figures(v) for k, v in by_phase.items()},
    }


def streams_by_project(events: list[tuple[int, Any]]) -> dict[Any, list[tuple[int, Any]]]:
    """The recorded events grouped by project, each stream in recording order."""
    streams: dict[Any, list[tuple[int, Any]]] = {}
    for position, event in events:
        streams.setdefault(event.originator_id, []).append((position, event))
    return streams


def mismatches(answer: dict[str, Any], expected: dict[str, Any], where: str = "") -> list[str]:
    """Where an API summary (JSON) differs from the oracle: counts and sums exactly, means
    as the exact mean rounded to two decimals."""
    found = []
    for name, want in expected.items():
        got = answer.get(name)
        if name in {"by_ministry", "by_phase"}:
            if sorted(got or {}) != sorted(want):
                found.append(f"{where}{name}: groups {sorted(got or {})} != {sorted(want)}")
            else:
                for key in want:
                    found += mismatches(got[key], want[key], f"{where}{name}[{key}].")
        elif name.startswith(("mean_", "median_", "weighted_")):
            if not rounds_to(got, want):
                found.append(f"{where}{name}: {got!r} != {float(want) if want else want!r}")
        elif name.startswith("total_"):
            if got is None or Decimal(got) != want:
                found.append(f"{where}{name}: {got!r} != {want}")
        elif got != want:
            found.append(f"{where}{name}: {got!r} != {want!r}")
    return found


def rounds_to(text: str | None, exact: Fraction | None) -> bool:
    """`text` has two decimals and is within half a cent of `exact` (None for None).

    Half-even at an exact tie is not checked: the API's 28-digit arithmetic may land a hair
    either side of it."""
    if text is None or exact is None:
        return text is None and exact is None
    got = Fraction(Decimal(text))
    return (got * 100).denominator == 1 and abs(got - exact) <= Fraction(1, 200) + PRECISION
