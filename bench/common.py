"""Helpers shared by the benchmarks: fresh schemas, timing, percentiles, result rows."""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SCALE = float(os.environ.get("BENCH_SCALE", "1"))


@dataclass(frozen=True)
class Result:
    """One line of the results table: a figure, its baseline, and the target."""

    bench: str
    metric: str
    value: str
    baseline: str
    ratio: str
    target: str
    ok: bool | None


@contextmanager
def fresh_schema(prefix: str = "bench") -> Iterator[str]:
    """A PostgreSQL schema that exists for the duration of one benchmark."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Wall-clock seconds of `runs` calls of `fn`."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def pct(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) of samples, nearest-rank."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def raw_decode_rate(portfolio: Any) -> float:
    """The baseline of every replay: reading the notification log and decoding it, events/s."""
    t0 = time.perf_counter()
    start, decoded = 0, 0
    while batch := portfolio.recorder.select_notifications(
        start=start, limit=2000, inclusive_of_start=False
    ):
        for notification in batch:
            portfolio.mapper.to_domain_event(notification)
        decoded += len(batch)
        start = batch[-1].id
    return decoded / (time.perf_counter() - t0)
