"""Random project histories for the oracle tests (hypothesis strategies and a driver)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from domain.application import CommandResult, Portfolio, Provenance
from domain.errors import DomainError
from domain.values import PHASES, RATINGS

BASE = date(2020, 1, 1)
TODAY = date(2026, 1, 1)

amounts = st.integers(min_value=1, max_value=500_000).map(lambda c: Decimal(c) / 100 * 1000)
# Few distinct days make same-day events and backdated corrections frequent.
days = st.one_of(
    st.integers(min_value=0, max_value=1500), st.sampled_from([0, 45, 100, 400, 401, 800, 1200])
)


@dataclass(frozen=True)
class Step:
    """One command of a history: which project, what, when."""

    project: int
    kind: str
    day: int
    args: tuple[Any, ...]
    catch_up: int  # 0: no catch-up after this step, else the batch size to use


# Every kind of step a history may take (`apply` knows each).
KINDS = (
    "cost",
    "schedule",
    "phase",
    "status",
    "rebaseline",
    "withhold",
    "disclose",
    "leave",
    "rejoin",
    "close",
    "reopen",
    "details",
    "award",
)

step = st.builds(
    Step,
    project=st.integers(min_value=0, max_value=3),
    kind=st.sampled_from(["cost", *KINDS]),  # cost twice: the commonest update
    day=days,
    args=st.tuples(amounts, st.sampled_from(PHASES), st.sampled_from(RATINGS), st.booleans()),
    catch_up=st.sampled_from([0, 0, 0, 1, 3, 1000]),
)
histories = st.lists(step, min_size=5, max_size=60)


def command_for(step: Step) -> Callable[[Portfolio, UUID], CommandResult]:
    """The Portfolio command a step stands for, as a call on one project."""
    amount, phase, rating, flag = step.args
    when = BASE + timedelta(days=step.day)
    prov = Provenance(when, "tester", "test", narrative="because" if flag else None)
    if step.kind == "cost":
        return lambda p, pid: p.reestimate_cost(pid, amount, provenance=prov)
    if step.kind == "schedule":
        end = when + timedelta(days=int(amount) % 900)
        return lambda p, pid: p.reestimate_schedule(pid, end, provenance=prov)
    if step.kind == "phase":
        return lambda p, pid: p.transition_phase(pid, phase, provenance=prov)
    if step.kind == "status":
        return lambda p, pid: p.report_status(pid, rating, provenance=prov)
    if step.kind == "rebaseline":
        return lambda p, pid: p.rebaseline(
            pid,
            baseline_cost=amount,
            baseline_end=when + timedelta(days=400) if flag else None,
            approver="board",
            reason="scope change",
            provenance=prov,
        )
    if step.kind == "details":
        changes = {"name": f"Project {int(amount) % 7}", "interministerial": flag}
        return lambda p, pid: p.revise_details(pid, changes, provenance=prov)
    if step.kind == "close":
        outcome = "completed" if flag else "abandoned"
        return lambda p, pid: p.close_project(pid, outcome, provenance=prov)
    commands: dict[str, Callable[[Portfolio, UUID], CommandResult]] = {
        "withhold": lambda p, pid: p.withhold_figures(pid, provenance=prov),
        "disclose": lambda p, pid: p.disclose_figures(pid, provenance=prov),
        "leave": lambda p, pid: p.leave_portfolio(pid, provenance=prov),
        "rejoin": lambda p, pid: p.rejoin_portfolio(pid, provenance=prov),
        "reopen": lambda p, pid: p.reopen_project(pid, provenance=prov),
    }
    return commands[step.kind]


def register_projects(portfolio: Portfolio, count: int = 4) -> list[UUID]:
    """Register `count` projects with varied figures."""
    ids = []
    for i in range(count):
        result = portfolio.register_project(
            provenance=Provenance(BASE + timedelta(days=30 * i), "tester", "test"),
            name=f"Project {i}",
            ministry_code=["MJ", "MEF", "MI"][i % 3],
            interministerial=i % 2 == 0,
            start_date=BASE - timedelta(days=200),
            phase=PHASES[i % 3],
            cost=Decimal(1_000_000 + i * 250_000) if i != 3 else None,
            planned_end=BASE + timedelta(days=900 + 100 * i),
        )
        ids.append(result.id)
    return ids


def apply_step(portfolio: Portfolio, ids: list[UUID], programme: UUID, step: Step) -> bool:
    """Apply one step; False when the domain refused it (nothing recorded)."""
    try:
        if step.kind == "award":
            prov = Provenance(BASE + timedelta(days=step.day), "tester", "test")
            portfolio.award_funding(
                programme, project_id=ids[step.project], amount=step.args[0], provenance=prov
            )
        else:
            command_for(step)(portfolio, ids[step.project])
    except DomainError:
        return False
    return True
