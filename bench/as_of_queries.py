"""Read-model queries as of a date: one project, the portfolio summary, changes between dates
(bench/changes_window.py).

Each against a naive replay of the event streams (`fold`) on the same data, in the same run;
the summary also against the per-project look-up it replaced (`portfolio_summary(states_at)`),
without its medians, and on a portfolio ten times smaller (its flatness).
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
from projections.figure_tables import materialised_summary
from projections.figures import portfolio_summary
from projections.state import fold
from service.bootstrap import Services

PROJECT_TARGET_S = 0.005
SUMMARY_TARGET_S = 0.010
FLATNESS_TARGET = 2.0
SUMMARY_RUNS = 300


def _day(rng: random.Random) -> date:
    return START + timedelta(days=rng.randrange(0, (TODAY - START).days))


def summary_timings(services: Services, seed: int = 5) -> dict[str, list[float]]:
    """The live summary's timings on random dates: as served, without its medians, and by
    the per-project look-up it replaced (fewer runs: it is slow)."""
    rng = random.Random(seed)
    db = services.db

    def served() -> None:
        with db.transaction(write=False) as tx:
            queries.summary(tx, _day(rng), None)

    def no_medians() -> None:
        with db.transaction(write=False) as tx:
            materialised_summary(tx, _day(rng), with_medians=False)

    def per_project() -> None:
        with db.transaction(write=False) as tx:
            portfolio_summary(queries.states_at(tx, _day(rng), None, light=True))

    timed(served, 10)  # warm the caches and the connection pool
    return {
        "served": timed(served, SUMMARY_RUNS),
        "no_medians": timed(no_medians, SUMMARY_RUNS),
        "per_project": timed(per_project, 30),
    }


def run(services: Services, made: list[Project], small: Services | None = None) -> list[Result]:
    """Time the three queries on the read model the rebuild made, and their naive replays;
    the summary on `small` too (a portfolio a tenth the size) for its flatness."""
    portfolio = services.portfolio
    rng = random.Random(3)
    ids = [str(p.id) for p in made]

    def day() -> date:
        return _day(rng)

    def one_project() -> None:
        with services.db.transaction(write=False) as tx:
            queries.project_state(tx, rng.choice(ids), day(), None)

    def naive_project() -> None:
        fold(portfolio.project_events(made[rng.randrange(len(made))].id), as_of=day())

    def naive_summary() -> None:
        as_of = day()
        portfolio_summary(
            s for p in made if (s := fold(portfolio.project_events(p.id), as_of=as_of))
        )

    one = timed(one_project, 500)
    naive_one = timed(naive_project, 100)
    big = summary_timings(services)
    summ = big["served"]
    naive_summ = timed(naive_summary, 2)
    project_target = f"p99 <= {PROJECT_TARGET_S * 1000:.0f} ms"
    summary_target = f"p99 <= {SUMMARY_TARGET_S * 1000:.0f} ms"
    project_met = pct(one, 0.99) <= PROJECT_TARGET_S
    summary_met = pct(summ, 0.99) <= SUMMARY_TARGET_S
    best_naive = min(naive_summ)
    per_project = big["per_project"]
    rows = [
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
            f"portfolio summary p50 / p99 ({len(made):,} projects, materialised, with medians)",
            f"{ms(pct(summ, 0.5))} / {ms(pct(summ, 0.99))}",
            f"per-project look-up {ms(pct(per_project, 0.5))} / {ms(pct(per_project, 0.99))};"
            f" naive replay {ms(best_naive)}",
            f"{pct(per_project, 0.99) / pct(summ, 0.99):.0f}x faster (p99)",
            summary_target,
            summary_met,
            (
                Figure(
                    "summary.p99_ms",
                    p99_ms(summ),
                    "ms",
                    "per-project look-up (the previous path) p99",
                    p99_ms(per_project),
                    summary_target,
                    summary_met,
                ),
            ),
        ),
        Result(
            "as_of",
            "portfolio summary without its medians p50 / p99",
            f"{ms(pct(big['no_medians'], 0.5))} / {ms(pct(big['no_medians'], 0.99))}",
            f"with medians {ms(pct(summ, 0.5))} / {ms(pct(summ, 0.99))}",
            f"{pct(big['no_medians'], 0.99) / pct(summ, 0.99):.2f}",
            summary_target,
            pct(big["no_medians"], 0.99) <= SUMMARY_TARGET_S,
        ),
    ] + changes_window.run(services)
    if small is not None:
        rows.append(flatness(big, summary_timings(small), len(made)))
    return rows


def flatness(big: dict[str, list[float]], small: dict[str, list[float]], projects: int) -> Result:
    """p99 on the big portfolio / p99 on the one a tenth its size, against the same ratio of
    the per-project look-up."""
    ratio = pct(big["served"], 0.99) / pct(small["served"], 0.99)
    plain = pct(big["no_medians"], 0.99) / pct(small["no_medians"], 0.99)
    baseline = pct(big["per_project"], 0.99) / pct(small["per_project"], 0.99)
    target = f"<= {FLATNESS_TARGET:g}"
    met = ratio <= FLATNESS_TARGET
    return Result(
        "as_of",
        f"summary flatness: p99 at {projects:,} / at {projects // 10:,} projects",
        f"{ratio:.2f} ({ms(pct(big['served'], 0.99))} / {ms(pct(small['served'], 0.99))});"
        f" without medians {plain:.2f}",
        f"per-project look-up {baseline:.2f}",
        f"{ratio / baseline:.2f}",
        target,
        met,
        (Figure("summary.flatness", ratio, "x", "per-project look-up", baseline, target, met),),
    )
