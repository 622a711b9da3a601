"""What the alert rules read of a project and of the portfolio (pure functions)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from domain.subscription import Rule
from domain.values import RATING_RANK, canonical_ministry
from projections.figures import CADRAGE, budget_drift, published_cost, q2, schedule_drift
from projections.state import ProjectState

Facts = dict[str, Any]


def project_facts(state: ProjectState) -> Facts:
    """What the rules read of a project (Decimals as text, so the facts are JSON)."""
    cost = published_cost(state)
    drift = budget_drift(state)

    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "name": state.name,
        "ministry_code": state.ministry_code,
        "in_portfolio": bool(state.in_portfolio),
        "budget_drift_pct": text(q2(drift)),
        "schedule_drift_pct": text(q2(schedule_drift(state))),
        "current_cost": text(cost),
        "rating": state.rating,
        "engaged": text(cost if cost is not None and state.phase != CADRAGE else None),
        "drift": text(drift),
    }


def project_value(rule: Rule, facts: Facts) -> Decimal | None:
    """The value of a project metric for a project's facts."""
    return metric_value(rule.metric, facts)


def metric_value(metric: str, facts: Facts) -> Decimal | None:
    """The value of the project metric `metric` for a project's facts."""
    if metric == "rating_at_or_worse":
        rating = facts.get("rating")
        return None if rating is None else Decimal(RATING_RANK[rating])
    raw = facts.get(metric)
    return None if raw is None else Decimal(raw)


def portfolio_value(metric: str, projects: Iterable[Facts]) -> Decimal | None:
    """Total cost engaged or mean budget drift over the projects followed (as the panorama)."""
    followed = [f for f in projects if f["in_portfolio"]]
    if metric == "portfolio_total_cost_engaged":
        return sum((Decimal(f["engaged"]) for f in followed if f["engaged"]), Decimal(0))
    drifts = [Decimal(f["drift"]) for f in followed if f["drift"] is not None]
    return q2(sum(drifts, Decimal(0)) / len(drifts)) if drifts else None


def covers(
    rule: Rule, project_id: str, facts: Facts, stable: Callable[[str], str] = canonical_ministry
) -> bool:
    """Whether a project-metric rule's scope covers this project.

    `stable` maps a ministry code to its stable code (the ministries reference), so that a
    scope on the Armées covers the projects recorded under MINDEF and under MAr.
    """
    if rule.scope == "project":
        return rule.scope_value == project_id
    if rule.scope == "programme":
        return False  # a programme rule follows its programme (projections/programme_alerts.py)
    if rule.scope == "ministry":
        code = facts.get("ministry_code")
        wanted = stable(rule.scope_value or "")
        return code is not None and wanted == stable(str(code))
    return True


def crossing(rule: Rule, states: Iterable[ProjectState]) -> list[tuple[ProjectState, Decimal]]:
    """The projects a project-metric rule covers whose value crosses its threshold now.

    The same facts, value and condition as the alert evaluation, from a clear state.
    """
    found = []
    for state in states:
        facts = project_facts(state)
        value = project_value(rule, facts)
        if covers(rule, state.project_id, facts) and rule.next_active(False, value):
            assert value is not None
            found.append((state, value))
    return found


def portfolio_crossing(rule: Rule, states: Iterable[ProjectState]) -> tuple[Decimal | None, bool]:
    """A portfolio rule's value over `states` and whether it crosses the threshold now."""
    value = portfolio_value(rule.metric, [project_facts(s) for s in states])
    return value, rule.next_active(False, value)
