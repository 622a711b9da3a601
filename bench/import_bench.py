"""Issue 4 benchmarks: importing the real published files, parse alone vs parse + record.

Each measured import starts from a fresh PostgreSQL schema (a second import of the same
files would record nothing) and runs in-process, as `panorama import` does, with the
projection trigger off (`in_worker=True`): the figure is the importer's, not the catch-up's.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from bench.common import PG_URL, Result, fresh_schema, ms
from service.bootstrap import bootstrap
from service.config import Settings
from service.imports import Edition, import_editions, parse_gmpp, parse_panorama

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
LONG = SHARED_DATA / "panorama" / "derived" / "panorama_all_editions_long.csv"
GMPP = SHARED_DATA / "gmpp" / "raw"
TODAY = date(2026, 1, 1)  # after every edition, so none is refused as dated in the future
RUNS = 5


def _panorama() -> list[Edition]:
    return parse_panorama(LONG)


def _gmpp() -> list[Edition]:
    return [parse_gmpp(path) for path in sorted(GMPP.glob("gmpp_*.csv"))]


def _parse_seconds(parse: Callable[[], list[Edition]]) -> float:
    t0 = time.perf_counter()
    parse()
    return time.perf_counter() - t0


def _import_seconds(parse: Callable[[], list[Edition]]) -> tuple[float, int]:
    """Parse and record everything into a fresh schema: (seconds, events recorded)."""
    with fresh_schema("bench_import") as schema:
        settings = Settings(database_url=PG_URL, database_schema=schema)
        services = bootstrap(settings, today=lambda: TODAY, in_worker=True)
        try:
            t0 = time.perf_counter()
            summary = import_editions(services.portfolio, parse())
            seconds = time.perf_counter() - t0
            assert summary.position is not None and summary.events > 0
            recorded = services.portfolio.recorder.max_notification_id() or 0
            assert recorded == summary.events, (recorded, summary.events)
        finally:
            services.close()
    return seconds, summary.events


def _measure(name: str, what: str, parse: Callable[[], list[Edition]]) -> Result:
    editions = parse()  # warm-up: imports, file cache
    rows = sum(len(e.projects) for e in editions)
    parse_s = statistics.median(_parse_seconds(parse) for _ in range(RUNS))
    runs = [_import_seconds(parse) for _ in range(RUNS)]
    total_s = statistics.median(seconds for seconds, _ in runs)
    events = runs[0][1]
    assert all(n == events for _, n in runs), "the same files must record the same events"
    print(
        f"{name}: {events} events from {rows} rows, parse {ms(parse_s)}, "
        f"parse+record {ms(total_s)} (median of {RUNS})",
        file=sys.stderr,
    )
    return Result(
        "import",
        f"{what}: parse+record ({events:,} events, {len(editions)} editions, {rows:,} rows)",
        f"{events / total_s:,.0f} ev/s ({ms(total_s)})",
        f"parse alone {ms(parse_s)} ({events / parse_s:,.0f} ev/s)",
        f"{total_s / parse_s:.1f}x parse",
        "",
        None,
    )


def run() -> list[Result]:
    return [
        _measure("panorama", "panorama history (long file)", _panorama),
        _measure("gmpp", "GMPP, six annual files", _gmpp),
    ]


if __name__ == "__main__":
    for result in run():
        print(result)
