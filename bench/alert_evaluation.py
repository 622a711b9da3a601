"""Alert evaluation: events per second of one catch-up of the alerts projection.

1,000 subscriptions (90 % on a ministry, 9 % on every project, 1 % portfolio mean drift) are
recorded first, then 1,000,000 x BENCH_SCALE synthetic events; the baseline is reading and
decoding the same notification log.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from bench.harness.config import SCALE
from bench.harness.db import fresh_schema, raw_decode_rate, schema_services
from bench.harness.results import Figure, Result
from bench.synthetic import MINISTRIES, record
from domain.subscription import PROJECT_METRICS, make_channel, make_rule
from projections import alerts
from projections.registry import catch_up
from service.bootstrap import Services

SUBSCRIPTIONS = 1_000
THRESHOLDS = {
    "budget_drift_pct": ("20", "10"),
    "schedule_drift_pct": ("25", "15"),
    "current_cost": ("200000000", "150000000"),
    "rating_at_or_worse": ("Amber/Red", "Amber"),
}


def _subscribe(services: Services, count: int) -> None:
    """`count` subscriptions: 90 % on a ministry, 9 % on every project, 1 % portfolio metrics."""
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook", email=None, secret=None)
    for i in range(count):
        metric = PROJECT_METRICS[i % len(PROJECT_METRICS)]
        threshold, clear = THRESHOLDS[metric]
        comparator = ">=" if metric == "rating_at_or_worse" else ">"
        if i % 100 == 99:
            metric, comparator = "portfolio_mean_budget_drift_pct", ">"
            rule = make_rule(
                metric=metric, comparator=comparator, threshold="15", scope="portfolio"
            )
        elif i % 100 >= 90:
            rule = make_rule(
                metric=metric,
                comparator=comparator,
                threshold=threshold,
                clear_threshold=clear,
                scope="portfolio",
            )
        else:
            rule = make_rule(
                metric=metric,
                comparator=comparator,
                threshold=threshold,
                clear_threshold=clear,
                scope="ministry",
                scope_value=MINISTRIES[i % len(MINISTRIES)],
            )
        services.portfolio.create_subscription(
            owner=f"bench-{i % 50}", rule=rule, channel=channel, actor="bench"
        )


def run() -> list[Result]:
    """The evaluation-throughput row."""
    projects = max(10, int(10_000 * SCALE))
    with fresh_schema("bench_alerts") as schema:
        services = schema_services(schema)
        try:
            portfolio = services.portfolio
            _subscribe(services, SUBSCRIPTIONS)
            record(portfolio, projects=projects, events_per_project=100)
            total = portfolio.recorder.max_notification_id() or 0
            raw_rate = raw_decode_rate(portfolio)
            with tqdm(total=total, desc="evaluate", unit="ev", file=sys.stderr) as bar:
                t0 = time.perf_counter()
                applied = catch_up(services.db, portfolio, alerts.NAME, progress=bar.update)
                seconds = time.perf_counter() - t0
            with services.db.transaction(write=False) as tx:
                raised = tx.scalar("SELECT count(*) FROM pr_alerts")
        finally:
            services.close()
    rate = applied / seconds
    return [
        Result(
            "alerts",
            f"evaluation throughput ({applied:,} events, {SUBSCRIPTIONS:,} subscriptions,"
            f" {raised:,} alerts)",
            f"{rate:,.0f} ev/s",
            f"{raw_rate:,.0f} ev/s read+decode",
            f"{rate / raw_rate:.2f}",
            "",
            None,
            (Figure("alerts.events_per_s", rate, "ev/s", "read+decode", raw_rate),),
        )
    ]
