"""Run one catch-up of the alerts projection in its own process, as a worker would.

Prints its events, seconds (wall clock and this process's CPU: the rest is waiting on
PostgreSQL) and peak memory (MB) as JSON.
"""

from __future__ import annotations

import json
import sys
import time

from bench.harness.processes import own_peak_mb
from projections import alerts
from projections.registry import catch_up
from service.bootstrap import bootstrap
from service.config import Settings


def main() -> None:
    settings = Settings.from_env()
    services = bootstrap(settings, in_worker=True)
    t0, cpu0 = time.perf_counter(), time.process_time()
    count = catch_up(
        services.db, services.portfolio, alerts.NAME, batch_size=settings.projection_batch_size
    )
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    services.close()
    json.dump(
        {"events": count, "seconds": seconds, "cpu_seconds": cpu, "peak_mb": own_peak_mb()},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
