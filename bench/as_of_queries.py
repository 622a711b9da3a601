"""Read-model queries as of a date: one project, the portfolio summary, changes between dates
(bench/changes_window.py).

Each against a naive replay of the event streams (`fold`) on the same data, in the same run.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from bench import changes_window
from bench.harness.results import Figure, Result
from bench.harness.stats import ms, p99_ms, pct, timed
from bench.synthetic import START, TODAY
from domain.project import Project
from projections import queries
from projections.figures import portfolio_summary
from projections.state import fold
from service.bootstrap import Services

PROJECT_TARGET_S = 0.005
SUMMARY_TARGET_S = 0.100


def run(services: Services, made: list[Project]) -> list[Result]:
    """Time the three queries on the read model the rebuild made, and their naive replays."""
    portfolio = services.portfolio
    rng = random.Random(3)
    ids = [str(p.id) for p in made]
    span = (TODAY - START).days

    def day() -> date:
        return START + timedelta(days=rng.randrange(0, span))

    def one_project() -> None:
        with services.db.transaction(write=False) as tx:
            queries.project_state(tx, rng.choice(ids), day(), None)

    def naive_project() -> None:
        fold(portfolio.project_events(made[rng.randrange(len(made))].id), as_of=day())

    def summary() -> None:
        with services.db.transaction(write=False) as tx:
            queries.summary(tx, day(), None)

    def naive_summary() -> None:
        as_of = day()
        portfolio_summary(
            s for p in made if (s := fold(portfolio.project_events(p.id), as_of=as_of))
        )

    one = timed(one_project, 500)
    naive_one = timed(naive_project, 100)
    summ = timed(summary, 40)
    naive_summ = timed(naive_summary, 2)
    project_target = f"p99 <= {PROJECT_TARGET_S * 1000:.0f} ms"
    summary_target = f"p99 <= {SUMMARY_TARGET_S * 1000:.0f} ms"
    project_met = pct(one, 0.99) <= PROJECT_TARGET_S
    summary_met = pct(summ, 0.99) <= SUMMARY_TARGET_S
    best_naive = min(naive_summ)
    return [
        Result(
            "as_of",
            "one project p50 / p99",
            f"{ms(pct(one, 0.5))} / {ms(pct(one, 0.99))}",
            f"naive replay {ms(pct(naive_one, 0.5))} / {ms(pct(naive_one, 0.99))}",
            f"{pct(naive_one, 0.5) / pct(one, 0.5):.0f}x faster",
            project_target,
            project_met,
            (
                Figure(
                    "as_of_project.p99_ms",
                    p99_ms(one),
                    "ms",
                    "naive replay",
                    p99_ms(naive_one),
                    project_target,
                    project_met,
                ),
            ),
        ),
        Result(
            "as_of",
            "portfolio summary p50 / p99",
            f"{ms(pct(summ, 0.5))} / {ms(pct(summ, 0.99))}",
            f"naive replay {ms(best_naive)}",
            f"{best_naive / pct(summ, 0.5):.0f}x faster",
            summary_target,
            summary_met,
            (
                Figure(
                    "summary.p99_ms",
                    p99_ms(summ),
                    "ms",
                    "naive replay (best of 2)",
                    best_naive * 1000,
                    summary_target,
                    summary_met,
                ),
            ),
        ),
    ] + changes_window.run(services)
