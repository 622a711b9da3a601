"""The materialised medians are the per-project ones, whatever the drifts' distribution.

Portfolios whose drifts tie heavily (most projects at exactly 0, or at one shared value),
span the signs and the magnitudes (-100 %, fractions of a percent, 10^14 %), with even and
odd counts (the lower and upper middles differ), changed by events backdated across the
monthly checkpoints already written: on both dialects, after the incremental catch-up and
after a rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.application import Portfolio, Provenance
from domain.errors import DomainError
from domain.values import PHASES as ALL_PHASES
from projections import queries
from projections.figure_tables import materialised_summary
from projections.figures import portfolio_summary
from projections.rebuild import rebuild
from projections.registry import catch_up
from projections.schema import PROJECTION
from service.bootstrap import Services
from tests.conftest import BACKENDS
from tests.histories import BASE
from tests.unit.test_figure_tables import store

# Few distinct amounts: most pairs tie, one baseline repeated makes a dominant value, and
# the extremes give negative, zero and huge drifts (1e12 over 0.01 is 10^16 %).
COSTS = [Decimal("1000000"), Decimal("2000000"), Decimal("500000"), Decimal("0.01")]
COSTS += [Decimal("1e12"), Decimal("1000001"), Decimal("3")]
MINISTRIES = ["MJ", "MEF", "MI"]
PHASES = list(ALL_PHASES[:3])
# Month boundaries and their neighbours: backdated events cross checkpoints.
DAYS = [0, 1, 30, 31, 59, 60, 61, 365, 366, 400]


@dataclass(frozen=True)
class Change:
    """One re-estimate of one project: its cost (an amount of COSTS) or its planned end."""

    project: int
    schedule: bool
    value: int  # an index into COSTS, or days from the start to the new planned end
    day: int  # days after BASE, from DAYS
    catch_up: int  # 0: none after this change, else the batch size


@dataclass(frozen=True)
class Design:
    """A project as registered: its baseline cost, its span and where it is counted."""

    cost: int  # an index into COSTS
    span: int  # days from the start to the baseline end (1 makes schedule drifts huge)
    ministry: int
    phase: int


designs = st.builds(
    Design,
    cost=st.sampled_from([0, 0, 0, 3, 4, 6]),
    span=st.sampled_from([1, 100, 100, 3000]),
    ministry=st.integers(min_value=0, max_value=2),
    phase=st.integers(min_value=0, max_value=2),
)
changes = st.builds(
    Change,
    project=st.integers(min_value=0, max_value=11),
    schedule=st.booleans(),
    value=st.integers(min_value=0, max_value=len(COSTS) - 1)
    | st.sampled_from([0, 1, 50, 100, 200, 5000]),
    day=st.sampled_from(DAYS),
    catch_up=st.sampled_from([0, 0, 1, 2, 1000]),
)


def register(portfolio: Portfolio, projects: list[Design]) -> list[UUID]:
    """Register the projects, all started on BASE minus 10 days, registered on BASE."""
    start = BASE - timedelta(days=10)
    return [
        portfolio.register_project(
            provenance=Provenance(BASE, "tester", "test"),
            name=f"Project {i}",
            ministry_code=MINISTRIES[d.ministry],
            interministerial=False,
            start_date=start,
            phase=PHASES[d.phase],
            cost=COSTS[d.cost],
            planned_end=start + timedelta(days=d.span),
        ).id
        for i, d in enumerate(projects)
    ]


def apply(services: Services, ids: list[UUID], change: Change) -> None:
    """One re-estimate (refused ones leave nothing), then the catch-up it asks for."""
    portfolio = services.portfolio
    pid = ids[change.project % len(ids)]
    when = BASE + timedelta(days=change.day)
    prov = Provenance(when, "tester", "test", "fix", change.day < 365)
    try:
        if change.schedule:
            end = BASE - timedelta(days=10) + timedelta(days=max(change.value, 1))
            portfolio.reestimate_schedule(pid, end, provenance=prov)
        else:
            portfolio.reestimate_cost(pid, COSTS[change.value % len(COSTS)], provenance=prov)
    except DomainError:
        return
    if change.catch_up:
        catch_up(services.db, portfolio, PROJECTION, batch_size=change.catch_up)


def medians_of(summary: dict[str, object]) -> list[object]:
    """The medians of a summary, overall then per ministry and per phase (for the message)."""
    found: list[object] = [summary["median_schedule_drift_pct"], summary["median_budget_drift_pct"]]
    for part in ("by_ministry", "by_phase"):
        groups = summary[part]
        assert isinstance(groups, dict)
        for key, figures in sorted(groups.items()):
            found.append((key, figures["median_schedule_drift_pct"]))
            found.append((key, figures["median_budget_drift_pct"]))
    return found


def check(services: Services, probes: list[date]) -> None:
    """On each probe, the materialised summary (medians included) is the per-project one."""
    with services.db.transaction(write=False) as tx:
        for as_of in probes:
            expected = portfolio_summary(queries.states_at(tx, as_of, None, light=True))
            found = materialised_summary(tx, as_of)
            assert medians_of(found) == medians_of(expected), as_of
            assert found == expected, as_of
            assert queries.summary(tx, as_of, None) == expected, as_of


PROBES = [BASE + timedelta(days=d) for d in (0, 1, 15, 30, 31, 45, 59, 60, 200, 365, 366, 500)]


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    projects=st.lists(designs, min_size=1, max_size=12),
    history=st.lists(changes, min_size=0, max_size=30),
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_medians_are_exact_under_ties_extremes_and_backdated_changes(
    backend: str, projects: list[Design], history: list[Change]
) -> None:
    with store(backend) as services:
        services.after_commit = lambda position: None
        ids = register(services.portfolio, projects)
        catch_up(services.db, services.portfolio, PROJECTION, batch_size=1000)
        for change in history:
            apply(services, ids, change)
        catch_up(services.db, services.portfolio, PROJECTION, batch_size=3)
        check(services, PROBES)
        rebuild(services.db, services.portfolio)
        check(services, PROBES)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("count", [6, 7])
def test_a_dominant_drift_sets_both_middles_of_even_and_odd_counts(
    backend: str, count: int
) -> None:
    """Most projects at drift 0, one far above and one far below, two moved to 100 % by
    backdated re-estimates: the odd count's middle stays 0, the even count's upper middle
    moves to 100 % (its median is 50 %)."""
    with store(backend) as services:
        services.after_commit = lambda position: None
        ids = register(services.portfolio, [Design(0, 100, i % 3, i % 2) for i in range(count)])
        for i, cost in ((0, 4), (1, 3)):
            apply(services, ids, Change(i, False, cost, 200, 0))
        catch_up(services.db, services.portfolio, PROJECTION, batch_size=1000)
        for i in (2, 3):  # backdated before the checkpoints of months already written
            apply(services, ids, Change(i, False, 1, 31, 1))
        catch_up(services.db, services.portfolio, PROJECTION, batch_size=1000)
        check(services, PROBES)
        with services.db.transaction(write=False) as tx:
            summary = materialised_summary(tx, BASE + timedelta(days=300))
        # drifts: 10^14 % (1), -100 % (1, rounds to -100.00), 100 % (2), 0 (count - 4)
        expected = Decimal("50.00") if count == 6 else Decimal("0.00")
        assert summary["median_budget_drift_pct"] == expected
        rebuild(services.db, services.portfolio)
        check(services, PROBES)
