"""Timing and percentiles: nearest-rank quantiles, milliseconds, repeated timings."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from service.heap import freeze_boot_heap


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Wall-clock seconds of `runs` calls of `fn`.

    The bench process's heap so far (its synthetic portfolio, its services) is frozen first,
    as the web and Celery workers freeze theirs after boot (`service.heap.freeze_boot_heap`):
    a full collection then walks what the calls make, not the bench's own data, which no
    server holds. What the calls allocate is collected as usual, inside the timings."""
    freeze_boot_heap()
    try:
        out = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return out
    finally:
        gc.unfreeze()


def pct(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) of samples, nearest-rank."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
    return ordered[index]


def ms(seconds: float) -> str:
    """Seconds shown as milliseconds, two decimals."""
    return f"{seconds * 1000:.2f} ms"


def p99_ms(samples: list[float]) -> float:
    """The p99 of samples in seconds, as milliseconds."""
    return pct(samples, 0.99) * 1000


def p50_p99(samples: list[float]) -> str:
    """ "p50 / p99" of the samples, or "n/a"."""
    if not samples:
        return "n/a"
    return f"{ms(pct(samples, 0.5))} / {ms(pct(samples, 0.99))}"
