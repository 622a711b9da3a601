"""Issue 3 benchmarks: rebuild throughput, as-of latency and rebuild memory."""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from tqdm import tqdm

from bench.common import PG_URL, SCALE, Result, fresh_schema, ms, pct, raw_decode_rate, timed
from bench.synthetic import START, TODAY, generate
from projections import queries
from projections.figures import portfolio_summary
from projections.state import fold
from service.bootstrap import bootstrap
from service.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def run() -> list[Result]:
    projects = max(40, int(10_000 * SCALE))
    per_project = 100
    results: list[Result] = []
    with fresh_schema() as schema:
        settings = Settings(database_url=PG_URL, database_schema=schema)
        services = bootstrap(settings, in_worker=True)
        portfolio = services.portfolio
        with tqdm(total=projects, desc="generate", unit="proj", file=sys.stderr) as bar:
            made = generate(
                portfolio, projects=projects, events_per_project=per_project, progress=bar.update
            )
        total = portfolio.recorder.max_notification_id() or 0

        # Baseline: the raw notification-log read-and-decode rate.
        raw_rate = raw_decode_rate(portfolio)

        env = dict(
            os.environ,
            DATABASE_URL=PG_URL,
            DATABASE_SCHEMA=schema,
            PYTHONPATH=str(ROOT),
            PROJECTION_BATCH_SIZE="5000",
        )
        out = subprocess.run(
            [sys.executable, "-m", "bench.rebuild_child"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        child = json.loads(out.stdout)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rebuild_rate = child["events"] / child["seconds"]
        results += [
            Result(
                "rebuild",
                f"throughput ({total:,} events)",
                f"{rebuild_rate:,.0f} ev/s",
                f"{raw_rate:,.0f} ev/s read+decode",
                f"{rebuild_rate / raw_rate:.2f}",
                ">= 25,000 ev/s",
                rebuild_rate >= 25_000,
            ),
            Result(
                "rebuild",
                "peak worker memory",
                f"{peak_mb:.0f} MB",
                "",
                "",
                "<= 300 MB",
                peak_mb <= 300,
            ),
        ]

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

        def changes() -> None:
            a, b = sorted([day(), day()])
            with services.db.transaction(write=False) as tx:
                queries.changes(tx, portfolio.mapper, a, b, None)

        one = timed(one_project, 500)
        naive_one = timed(naive_project, 100)
        summ = timed(summary, 40)
        chg = timed(changes, 20)
        naive_summ = timed(naive_summary, 2)
        results += [
            Result(
                "as_of",
                "one project p50 / p99",
                f"{ms(pct(one, 0.5))} / {ms(pct(one, 0.99))}",
                f"naive replay {ms(pct(naive_one, 0.5))} / {ms(pct(naive_one, 0.99))}",
                f"{pct(naive_one, 0.5) / pct(one, 0.5):.0f}x faster",
                "p99 <= 5 ms",
                pct(one, 0.99) <= 0.005,
            ),
            Result(
                "as_of",
                "portfolio summary p50 / p99",
                f"{ms(pct(summ, 0.5))} / {ms(pct(summ, 0.99))}",
                f"naive replay {ms(min(naive_summ))}",
                f"{min(naive_summ) / pct(summ, 0.5):.0f}x faster",
                "p99 <= 100 ms",
                pct(summ, 0.99) <= 0.100,
            ),
            Result(
                "as_of",
                "changes between two dates p50 / p99",
                f"{ms(pct(chg, 0.5))} / {ms(pct(chg, 0.99))}",
                f"naive replay {ms(2 * min(naive_summ))} (two summaries)",
                f"{2 * min(naive_summ) / pct(chg, 0.5):.0f}x faster",
                "",
                None,
            ),
        ]
        services.close()
    return results
