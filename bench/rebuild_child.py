"""Run one rebuild in its own process; print as JSON its events, seconds, peak memory, the
seconds of each phase, the CPU seconds of its processes and the machine's load meanwhile."""

from __future__ import annotations

import json
import os
import resource
import sys
import time

from bench.harness.processes import own_peak_mb
from projections.rebuild import rebuild
from service.bootstrap import bootstrap, store_opener
from service.config import Settings


def cpu_seconds() -> float:
    """User and system CPU of this process and of its finished children (the partitions)."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    settings = Settings.from_env()
    services = bootstrap(settings, in_worker=True)
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    processes = int(os.environ.get("REBUILD_PROCESSES", "2"))
    phases: dict[str, float] = {}
    count = rebuild(
        services.db,
        services.portfolio,
        batch_size=settings.projection_batch_size,
        processes=processes,
        open_store=store_opener(settings),
        phases=phases,
    )
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    load = os.getloadavg()[0]  # the last minute's: the rebuild's, mostly
    services.close()
    peak_mb = max(
        own_peak_mb(),  # VmHWM: ru_maxrss would carry the bench process's across exec
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,  # the partitions
    )
    json.dump(
        {
            "events": count,
            "seconds": seconds,
            "peak_mb": peak_mb,
            "phases": phases,
            "cpu_s": cpu,
            "load": load,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
