"""Run one rebuild in its own process; print its events, seconds and peak memory as JSON."""

from __future__ import annotations

import json
import os
import resource
import sys
import time

from projections.rebuild import rebuild
from service.bootstrap import bootstrap, store_opener
from service.config import Settings


def main() -> None:
    settings = Settings.from_env()
    services = bootstrap(settings, in_worker=True)
    t0 = time.perf_counter()
    processes = int(os.environ.get("REBUILD_PROCESSES", "2"))
    count = rebuild(
        services.db,
        services.portfolio,
        batch_size=settings.projection_batch_size,
        processes=processes,
        open_store=store_opener(settings),
    )
    seconds = time.perf_counter() - t0
    services.close()
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,  # the partition processes
    )
    json.dump({"events": count, "seconds": seconds, "peak_mb": peak_kb / 1024}, sys.stdout)


if __name__ == "__main__":
    main()
