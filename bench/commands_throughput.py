"""Commands per second over gunicorn + Celery, against the library alone doing the same work.

See docs/benchmarks.md (commands throughput) for the method and the knobs.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from http.client import HTTPException
from pathlib import Path

from bench.harness.client import admin_token, cost_estimate, register
from bench.harness.config import PG_URL, REDIS_URL, SCALE, log
from bench.harness.cpu import cpu_by_process, profiled, settle
from bench.harness.db import fresh_schema, schema_services
from bench.harness.load import Command, CommandFailed, Load, closed_loop
from bench.harness.results import Figure, Result, guarded
from bench.harness.stack import Stack, Web, server_stack
from bench.harness.stats import p50_p99, p99_ms, pct
from domain.application import Provenance
from service.bootstrap import Services

CLIENTS = int(os.environ.get("BENCH_HTTP_CLIENTS", "8"))
WARMUP_COMMANDS = 10
THROUGHPUT_S = max(5.0, 15.0 * SCALE)
BUDGET_S = max(60.0, 6 * THROUGHPUT_S)  # for a run of given counts: well past the expected
TARGET_RATIO = 0.7
PYSPY_DIR = Path(os.environ["BENCH_PYSPY_DIR"]) if os.environ.get("BENCH_PYSPY_DIR") else None


def http_setup(stack: Stack, label: str, keys: bool) -> Callable[[int], Command]:
    """Per client: its connection, its project, its warm-up; then a cost-estimate poster."""

    def setup(i: int) -> Command:
        client = stack.client(f"bench-{i}")
        project_id, _ = register(client, f"{label} {i}")
        path = f"/api/projects/{project_id}/cost-estimates"

        def post(n: int) -> None:
            headers = {"Idempotency-Key": uuid.uuid4().hex} if keys else None
            try:
                status, payload = client.request("POST", path, cost_estimate(n), headers)
            except (OSError, HTTPException) as error:
                raise CommandFailed(f"transport: {error!r}") from error
            if status != 201:
                raise CommandFailed(f"{status}: {payload[:200]!r}")

        for n in range(WARMUP_COMMANDS):
            post(-1 - n)
        return post

    return setup


def raw_setup(services: Services) -> Callable[[int], Command]:
    """Per thread: its project through the library, its warm-up; then reestimate_cost."""
    portfolio = services.portfolio

    def setup(i: int) -> Command:
        actor = f"bench-{i}"
        project = portfolio.register_project(
            provenance=Provenance(effective_date=date(2024, 1, 15), actor=actor),
            name=f"raw {i}",
            ministry_code="MINARM",
        )
        prov = Provenance(effective_date=date(2024, 3, 1), actor=actor)

        def change(n: int) -> None:
            portfolio.reestimate_cost(project.id, Decimal(f"{1000 + n}.00"), provenance=prov)

        for n in range(WARMUP_COMMANDS):
            change(-1 - n)
        return change

    return setup


def http_run(web: Web, *, duration_s: float | None, counts: list[int] | None, tag: str) -> Load:
    """One closed-loop run over HTTP on a fresh schema, for a duration or given counts."""
    with fresh_schema("bench_http") as schema:
        services = schema_services(schema)
        token = admin_token(services.db)
        services.close()
        with server_stack(
            schema=schema, database_url=PG_URL, redis_url=REDIS_URL, web=web, token=token
        ) as stack:
            log(f"{tag}: gunicorn {web} on :{stack.port}, celery queue {stack.queue}")
            settle(stack.groups())
            spy = PYSPY_DIR / f"http-{tag}-gunicorn.txt" if PYSPY_DIR else None
            spy_celery = PYSPY_DIR / f"http-{tag}-celery.txt" if PYSPY_DIR else None
            master = stack.procs["gunicorn"].pid
            celery_pid = stack.procs["celery"].pid if "celery" in stack.procs else 0
            workers_before = cpu_by_process(master)
            clock = time.perf_counter()
            with (
                profiled(master, spy, THROUGHPUT_S + 3, True),
                profiled(celery_pid, spy_celery if celery_pid else None, THROUGHPUT_S + 3, True),
            ):
                load = closed_loop(
                    f"HTTP {web}",
                    CLIENTS,
                    http_setup(stack, f"bench {tag}", web.keys),
                    duration_s=duration_s,
                    counts=counts,
                    budget_s=BUDGET_S,
                    groups=stack.groups(),
                )
            wall = time.perf_counter() - clock
            shares = [
                (seconds - workers_before.get(pid, seconds)) / wall
                for pid, seconds in cpu_by_process(master).items()
                if pid != master
            ]
            log(
                f"{tag}: cores used by each gunicorn worker (connections stick to the worker"
                f" that accepted them): {', '.join(f'{x:.2f}' for x in sorted(shares))}"
            )
            stack.check_alive()
            if load.errors:
                log(f"server logs:\n{stack.tail()}")
    _log_load(load)
    return load


def raw_run(counts: list[int]) -> Load:
    """The baseline: the same counts of reestimate_cost in this process, on a fresh schema."""
    with fresh_schema("bench_raw") as schema:
        services = schema_services(schema)
        try:
            spy = PYSPY_DIR / "raw.txt" if PYSPY_DIR else None
            with profiled(os.getpid(), spy, THROUGHPUT_S, False):
                load = closed_loop(
                    "raw reestimate_cost",
                    CLIENTS,
                    raw_setup(services),
                    counts=counts,
                    budget_s=BUDGET_S,
                )
        finally:
            services.close()
    _log_load(load)
    return load


def _log_load(load: Load) -> None:
    log(load.describe())
    for sample in load.samples:
        log(f"  error: {sample}")


def throughput() -> list[Result]:
    """The primary run and its raw baseline, then one row per BENCH_HTTP_SWEEP variant."""
    primary = Web.parse(os.environ.get("BENCH_WEB", ""))
    log(f"commands: {CLIENTS} clients, {THROUGHPUT_S:.0f} s over HTTP, then the same work raw")
    http = http_run(primary, duration_s=THROUGHPUT_S, counts=None, tag="primary")
    counts = http.per_thread
    raw = raw_run(counts)
    ratio = http.rate / raw.rate if raw.rate else 0.0
    clean = http.errors == 0 and raw.errors == 0 and not raw.truncated and http.total > 0
    target = f">= {TARGET_RATIO} x raw"
    met = clean and ratio >= TARGET_RATIO
    results = [
        Result(
            "http",
            f"commands/s, C={CLIENTS}, gunicorn {primary} + celery",
            f"{http.rate:,.0f} cmd/s ({http.total:,} cmds, {http.errors} errors)",
            f"raw reestimate_cost {raw.rate:,.0f} cmd/s ({raw.errors} errors)",
            f"{ratio:.2f}",
            target,
            met,
            (
                Figure(
                    "http.commands_per_s",
                    http.rate,
                    "cmd/s",
                    "raw reestimate_cost",
                    raw.rate,
                    target,
                    met,
                ),
            ),
        ),
        Result(
            "http",
            "command latency p50 / p99",
            p50_p99(http.latencies),
            f"raw {p50_p99(raw.latencies)}",
            f"{pct(http.latencies, 0.5) / pct(raw.latencies, 0.5):.2f} (p50)" if clean else "",
            "",
            None,
            (
                Figure(
                    "http.command_p99_ms",
                    p99_ms(http.latencies),
                    "ms",
                    "raw reestimate_cost",
                    p99_ms(raw.latencies),
                ),
            )
            if clean
            else (),
        ),
    ]
    for text in filter(None, os.environ.get("BENCH_HTTP_SWEEP", "").split(",")):
        web = Web.parse(text.strip())

        def variant(web: Web = web, tag: str = text.strip().replace("+", "_")) -> list[Result]:
            # Its own raw baseline right after it: the host's load drifts within a run.
            other = http_run(web, duration_s=None, counts=counts, tag=tag)
            near = raw_run(counts)
            return [
                Result(
                    "http",
                    f"commands/s, gunicorn {web} (same counts)",
                    f"{other.rate:,.0f} cmd/s, p50 / p99 {p50_p99(other.latencies)}"
                    f" ({other.errors} errors)",
                    f"raw {near.rate:,.0f} cmd/s, run just after",
                    f"{other.rate / near.rate:.2f}" if near.rate else "",
                    target,
                    None if other.errors == 0 and near.errors == 0 else False,
                )
            ]

        results += guarded(f"http {web}", variant)
    return results


def run() -> list[Result]:
    """The commands-throughput rows (a failed row if the benchmark itself fails)."""
    if PYSPY_DIR is not None:
        PYSPY_DIR.mkdir(parents=True, exist_ok=True)
    return guarded("http", throughput)
