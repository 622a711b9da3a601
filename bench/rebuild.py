"""Rebuild of the read model from the event log: events per second and peak memory.

The rebuild runs in a child process (bench.rebuild_child), so that its peak memory is its own;
the baseline is reading and decoding the same notification log in this process.
"""

from __future__ import annotations

import json
import os
from typing import Any

from bench.harness.config import log
from bench.harness.db import raw_decode_rate
from bench.harness.processes import child_report
from bench.harness.results import Figure, Result
from service.bootstrap import Services

TARGET_EVENTS_PER_S = 50_000
TARGET_PEAK_MB = 300


def run(services: Services, schema: str) -> list[Result]:
    """Rebuild the read model of `schema` (recorded by `services`): throughput and memory."""
    total = services.portfolio.recorder.max_notification_id() or 0
    raw_rate = raw_decode_rate(services.portfolio)
    child = child_report("bench.rebuild_child", schema, batch_size=5000)
    peak_mb = child["peak_mb"]
    rate = child["events"] / child["seconds"]
    log(f"rebuild phases (s): {json.dumps({k: round(v, 2) for k, v in child['phases'].items()})}")
    rate_target = f">= {TARGET_EVENTS_PER_S:,} ev/s"
    memory_target = f"<= {TARGET_PEAK_MB} MB"
    return [
        Result(
            "rebuild",
            f"throughput ({total:,} events)",
            f"{rate:,.0f} ev/s",
            f"{raw_rate:,.0f} ev/s read+decode",
            f"{rate / raw_rate:.2f}",
            rate_target,
            rate >= TARGET_EVENTS_PER_S,
            (
                Figure(
                    "rebuild.events_per_s",
                    rate,
                    "ev/s",
                    "read+decode",
                    raw_rate,
                    rate_target,
                    rate >= TARGET_EVENTS_PER_S,
                ),
            ),
        ),
        Result(
            "rebuild",
            "peak worker memory",
            f"{peak_mb:.0f} MB",
            "",
            "",
            memory_target,
            peak_mb <= TARGET_PEAK_MB,
            (
                Figure(
                    "rebuild.peak_rss_mb",
                    peak_mb,
                    "MB",
                    target=memory_target,
                    met=peak_mb <= TARGET_PEAK_MB,
                ),
            ),
        ),
        Result(
            "rebuild",
            "where the time went",
            profile(child),
            "",
            "",
            "",
            None,
        ),
    ]


def profile(child: dict[str, Any]) -> str:
    """The rebuild's wall time per phase, its processes' CPU per event and the machine's load."""
    phases: dict[str, float] = child["phases"]
    main = ("load", "indexes+analyze", "swap")
    other = child["seconds"] - sum(phases.get(name, 0.0) for name in main)
    parts = [f"{name} {phases.get(name, 0.0):.1f} s" for name in main] + [f"other {other:.1f} s"]
    cpu_us = 1e6 * child["cpu_s"] / max(child["events"], 1)
    return (
        f"{', '.join(parts)}; Python CPU {cpu_us:.1f} µs/ev (all processes); "
        f"load average {child['load']:.1f} on {os.cpu_count()} cores"
    )
