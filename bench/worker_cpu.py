"""`python -m bench.worker_cpu ROUNDS BATCH [PROFILE]`: CPU per event of a warm catch-up pass.

What the Celery worker does for each burst of commands, in process and without Celery: on a
fresh PostgreSQL schema, 40 projects; then ROUNDS times BATCH cost estimates committed
through the library (on random projects), then one `catch_up_all` (every projection, warm
projectors), timed with `time.process_time`. Prints the worker's CPU per event (the mean
over the rounds, and the median round) and the CPU its PostgreSQL backends spent in the
passes (from /proc, the backends found by their application name; 10 ms ticks, so summed
over the rounds). With PROFILE, a cProfile of the passes in CPU time is written there. Not
a suite: a way to compare two commits back to back (docs/benchmarks.md, "The worker's
passes").
"""

from __future__ import annotations

import cProfile
import os
import random
import sys
import time
import uuid
from datetime import date
from decimal import Decimal
from uuid import UUID

import psycopg

from bench.harness.config import PG_URL
from bench.harness.cpu import proc_stats
from bench.harness.db import fresh_schema
from domain.values import Provenance
from projections.registry import catch_up_all
from service.bootstrap import bootstrap
from service.config import Settings

APP = "bench-worker-cpu-" + uuid.uuid4().hex[:6]
PROJECTS = 40
WARMUP = 5


def backend_cpu() -> float:
    """CPU seconds so far of this process's PostgreSQL backends (by application name)."""
    with psycopg.connect(PG_URL, autocommit=True, application_name="bench-probe") as conn:
        pids = {
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (APP,)
            )
        }
    return sum(cpu for pid, _, _, cpu in proc_stats() if pid in pids)


def main(argv: list[str]) -> None:
    """Measure and print; see the module."""
    rounds, batch = int(argv[0]), int(argv[1])
    profile_path = argv[2] if len(argv) > 2 else None
    os.environ["PGAPPNAME"] = APP  # libpq's default for every connection of this process
    rnd = random.Random(5)
    with fresh_schema("bench_worker_cpu") as schema:
        services = bootstrap(Settings(database_url=PG_URL, database_schema=schema), in_worker=True)
        portfolio, db = services.portfolio, services.db
        try:
            estimate = Provenance(effective_date=date(2024, 3, 1), actor="bench")
            registered = Provenance(effective_date=date(2024, 1, 1), actor="bench")
            ids: list[UUID] = [
                portfolio.register_project(
                    provenance=registered,
                    name=f"p{i}",
                    ministry_code="MINARM",
                    cost=Decimal("1000.00"),
                    start_date=date(2023, 1, 1),
                    planned_end=date(2026, 1, 1),
                ).id
                for i in range(PROJECTS)
            ]
            catch_up_all(db, portfolio)
            sent = 0

            def commit() -> None:
                nonlocal sent
                for _ in range(batch):
                    sent += 1
                    amount = Decimal(f"{1000 + sent}.00")
                    portfolio.reestimate_cost(rnd.choice(ids), amount, provenance=estimate)

            for _ in range(WARMUP):
                commit()
                catch_up_all(db, portfolio)
            profile = cProfile.Profile(time.process_time) if profile_path else None
            per_round: list[float] = []
            pg = 0.0
            for _ in range(rounds):
                commit()
                pg_before, cpu_before = backend_cpu(), time.process_time()
                if profile is not None:
                    profile.enable()
                catch_up_all(db, portfolio)
                if profile is not None:
                    profile.disable()
                per_round.append(time.process_time() - cpu_before)
                pg += backend_cpu() - pg_before
            events = rounds * batch
            per_round.sort()
            print(
                f"events {events}  worker CPU ms/event mean {1000 * sum(per_round) / events:.3f}"
                f" median {1000 * per_round[len(per_round) // 2] / batch:.3f}"
                f"  PG backends ms/event {1000 * pg / events:.3f}"
            )
            if profile is not None and profile_path:
                profile.dump_stats(profile_path)
        finally:
            services.close()


if __name__ == "__main__":
    main(sys.argv[1:])
