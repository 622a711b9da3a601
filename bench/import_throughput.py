"""Importing the real published files: parse alone vs parse + record, events per second.

Each measured import starts from a fresh PostgreSQL schema (a second import of the same
files would record nothing) and runs in-process, as `panorama import` does, with the
projection trigger off (`in_worker=True`): the figure is the importer's, not the catch-up's.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from bench.harness.config import ROOT, log
from bench.harness.db import fresh_schema, schema_services
from bench.harness.results import Figure, Result
from bench.harness.stats import ms
from importers import Edition, import_editions, parse_gmpp, parse_panorama

SHARED_DATA = Path(os.environ.get("PANORAMA_SHARED_DATA") or ROOT.parent / "shared" / "data")
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
        services = schema_services(schema, today=lambda: TODAY)
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
    log(
        f"{name}: {events} events from {rows} rows, parse {ms(parse_s)}, "
        f"parse+record {ms(total_s)} (median of {RUNS})"
    )
    return Result(
        "import",
        f"{what}: parse+record ({events:,} events, {len(editions)} editions, {rows:,} rows)",
        f"{events / total_s:,.0f} ev/s ({ms(total_s)})",
        f"parse alone {ms(parse_s)} ({events / parse_s:,.0f} ev/s)",
        f"{total_s / parse_s:.1f}x parse",
        "",
        None,
        (
            Figure(
                f"import.{name}_events_per_s",
                events / total_s,
                "ev/s",
                "parse alone",
                events / parse_s,
            ),
        ),
    )


def run() -> list[Result]:
    """One row per source: the Panorama history, the six GMPP files."""
    return [
        _measure("panorama", "panorama history (long file)", _panorama),
        _measure("gmpp", "GMPP, six annual files", _gmpp),
    ]
