"""The suites of `make bench`: each runs one or more benchmark modules and returns their rows."""

from __future__ import annotations

from collections.abc import Callable

from bench.harness.config import SCALE
from bench.harness.db import fresh_schema, schema_services
from bench.harness.results import Result, guarded


def http() -> list[Result]:
    """Commands per second over gunicorn + Celery, then the projection lag at 200 cmd/s."""
    from bench import commands_throughput, projection_lag

    return commands_throughput.run() + projection_lag.run()


def projections() -> list[Result]:
    """One synthetic portfolio (10,000 x BENCH_SCALE projects, 100 events each): the rebuild,
    then the as-of queries on the read model it built; the summary also on a portfolio a
    tenth the size (its flatness), rebuilt the same way."""
    from bench import as_of_queries, changes_window, rebuild
    from bench.synthetic import record
    from projections.rebuild import rebuild as rebuild_read_model

    projects = max(40, int(10_000 * SCALE))
    with fresh_schema() as schema, fresh_schema() as small_schema:
        services = schema_services(schema)
        small = schema_services(small_schema)
        try:
            record(small.portfolio, projects=max(4, projects // 10), events_per_project=100)
            rebuild_read_model(small.db, small.portfolio)
            made = record(services.portfolio, projects=projects, events_per_project=100)
            rows = rebuild.run(services, schema) + as_of_queries.run(services, made, small)
            return rows + guarded("as_of", lambda: changes_window.api_memory(services, schema))
        finally:
            small.close()
            services.close()


def imports() -> list[Result]:
    """Importing the real published files."""
    from bench import import_throughput

    return import_throughput.run()


def alerts() -> list[Result]:
    """Alert evaluation throughput, then breach-to-webhook latency through a worker."""
    from bench import alert_evaluation, breach_to_webhook

    return guarded("alerts", alert_evaluation.run) + guarded("alerts", breach_to_webhook.run)


def pages() -> list[Result]:
    """`/` and `/projects` rendered at 10,000 x BENCH_SCALE projects beside their API calls,
    and the first load's compressed weight."""
    from bench import pages as bench_pages
    from service.app import create_app

    with fresh_schema() as schema:
        services = schema_services(schema)
        try:
            bench_pages.portfolio(services)
            app = create_app(services)
            return guarded("pages", lambda: bench_pages.run(services, app))
        finally:
            services.close()


SUITES: dict[str, Callable[[], list[Result]]] = {
    "http": http,
    "projections": projections,
    "imports": imports,
    "alerts": alerts,
    "pages": pages,
}
