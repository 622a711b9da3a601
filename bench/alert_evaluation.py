"""Alert evaluation: events per second of one catch-up of the alerts projection.

1,000 subscriptions (90 % on a ministry, 9 % on every project, 1 % portfolio mean drift) are
recorded first, then 100 synthetic events for each of 10,000 x BENCH_SCALE projects, then one
catch-up in a worker process (bench.alert_child, so its peak memory is its own); the baseline
is reading and decoding the same notification log. The same at a tenth of the projects
gives the flatness (rate at full size / rate at a tenth).
"""

from __future__ import annotations

from bench.harness.config import SCALE, log
from bench.harness.db import fresh_schema, raw_decode_rate, schema_services
from bench.harness.processes import child_report
from bench.harness.results import Figure, Result
from bench.synthetic import MINISTRIES, record
from domain.subscription import PROJECT_METRICS, make_channel, make_rule
from service.bootstrap import Services

SUBSCRIPTIONS = 1_000
TARGET_EVENTS_PER_S = 10_000
TARGET_FLATNESS = 0.8
TARGET_PEAK_MB = 300
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


def _evaluate(projects: int) -> tuple[int, float, float, float, int, float]:
    """Record `projects` x 100 events under the subscriptions, then one catch-up in a worker
    process: (events, ev/s, read+decode ev/s, peak MB, alerts, the worker's CPU share)."""
    with fresh_schema("bench_alerts") as schema:
        services = schema_services(schema)
        try:
            _subscribe(services, SUBSCRIPTIONS)
            record(services.portfolio, projects=projects, events_per_project=100)
            raw_rate = raw_decode_rate(services.portfolio)
            log(f"alerts: evaluating {projects:,} projects in a worker process")
            child = child_report("bench.alert_child", schema, batch_size=2000)
            with services.db.transaction(write=False) as tx:
                raised = int(tx.scalar("SELECT count(*) FROM pr_alerts") or 0)
        finally:
            services.close()
    rate = child["events"] / child["seconds"]
    cpu_share = child["cpu_seconds"] / child["seconds"]
    return child["events"], rate, raw_rate, child["peak_mb"], raised, cpu_share


def run() -> list[Result]:
    """Throughput at full scale and at a tenth of the projects (flatness), worker memory."""
    projects = max(100, int(10_000 * SCALE))
    small = projects // 10
    _, small_rate, small_raw, _, _, _ = _evaluate(small)
    applied, rate, raw_rate, peak_mb, raised, cpu_share = _evaluate(projects)
    flatness = rate / small_rate
    rate_target, flat_target, memory_target = (
        f">= {TARGET_EVENTS_PER_S:,} ev/s",
        f">= {TARGET_FLATNESS}",
        f"<= {TARGET_PEAK_MB} MB",
    )
    rate_met = rate >= TARGET_EVENTS_PER_S
    flat_met = flatness >= TARGET_FLATNESS
    memory_met = peak_mb <= TARGET_PEAK_MB
    return [
        Result(
            "alerts",
            f"evaluation throughput ({projects:,} projects, {applied:,} events,"
            f" {SUBSCRIPTIONS:,} subscriptions, {raised:,} alerts; worker CPU"
            f" {cpu_share:.0%} of the time, the rest waiting on PostgreSQL)",
            f"{rate:,.0f} ev/s",
            f"{raw_rate:,.0f} ev/s read+decode",
            f"{rate / raw_rate:.2f}",
            rate_target,
            rate_met,
            (
                Figure(
                    "alerts.events_per_s",
                    rate,
                    "ev/s",
                    "read+decode",
                    raw_rate,
                    rate_target,
                    rate_met,
                ),
            ),
        ),
        Result(
            "alerts",
            f"flatness: rate at {projects:,} projects / at {small:,}",
            f"{flatness:.2f}",
            f"{small_rate:,.0f} ev/s at {small:,} ({small_raw:,.0f} read+decode)",
            "",
            flat_target,
            flat_met,
            (
                Figure(
                    "alerts.flatness",
                    flatness,
                    "ratio",
                    f"ev/s at {small:,} projects",
                    small_rate,
                    flat_target,
                    flat_met,
                ),
            ),
        ),
        Result(
            "alerts",
            "peak worker memory (evaluation)",
            f"{peak_mb:.0f} MB",
            "",
            "",
            memory_target,
            memory_met,
            (
                Figure(
                    "alerts.worker_peak_rss_mb",
                    peak_mb,
                    "MB",
                    target=memory_target,
                    met=memory_met,
                ),
            ),
        ),
    ]
