"""Closed-loop load: C threads, each set up on its own, then commands back to back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.harness.config import log
from bench.harness.cpu import cpu_report, cpu_snapshot, settle
from bench.harness.stats import p50_p99

MAX_CONSECUTIVE_ERRORS = 20

Command = Callable[[int], None]


class CommandFailed(Exception):
    """A command that did not answer as expected (or raised)."""


@dataclass
class ThreadStats:
    """What one client thread saw."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)
    end: float = 0.0

    def failed(self, what: str) -> None:
        """Count an error, keeping the first few messages."""
        self.errors += 1
        if len(self.samples) < 3:
            self.samples.append(what[:300])


@dataclass
class Load:
    """What a closed-loop run did."""

    label: str
    per_thread: list[int]
    latencies: list[float]
    errors: int
    samples: list[str]
    elapsed: float
    truncated: bool
    cpu: str

    @property
    def total(self) -> int:
        """Commands made."""
        return sum(self.per_thread)

    @property
    def rate(self) -> float:
        """Commands per second of wall time."""
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    def describe(self) -> str:
        """One line for the log."""
        return (
            f"{self.label}: {self.total} commands in {self.elapsed:.1f} s = {self.rate:.0f} cmd/s,"
            f" latency p50 / p99 {p50_p99(self.latencies)}, {self.errors} errors"
            + (" (stopped by its deadline)" if self.truncated else "")
            + f"; {self.cpu}"
        )


@dataclass
class _Marks:
    """When the start barrier opened, and the CPU counters then."""

    t0: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)


def closed_loop(
    label: str,
    clients: int,
    setup: Callable[[int], Command],
    *,
    duration_s: float | None = None,
    counts: list[int] | None = None,
    budget_s: float = 60.0,
    groups: dict[str, int] | None = None,
) -> Load:
    """C threads: setup(i) (registration + warm-up), a barrier, then commands back to back.

    Each thread runs for `duration_s`, or makes exactly `counts[i]` commands (bounded by
    `budget_s`, a deadline well past the expected time). With `groups` (process groups of the
    servers), the start waits until they are idle and the CPU they use is reported.
    """
    stats = [ThreadStats() for _ in range(clients)]
    done = [0] * clients
    marks = _Marks()

    def started() -> None:
        if groups:
            waited = settle(groups)
            if waited > 2:
                log(f"{label}: waited {waited:.1f} s for the servers to go idle")
        marks.cpu = cpu_snapshot(groups or {})
        marks.t0 = time.perf_counter()

    barrier = threading.Barrier(clients, action=started)
    budget = duration_s if duration_s is not None else budget_s

    def body(i: int) -> None:
        st = stats[i]
        try:
            command = setup(i)
        except Exception as error:
            st.failed(f"setup: {error}")
            barrier.abort()
            return
        try:
            barrier.wait(timeout=180)
        except threading.BrokenBarrierError:
            return
        deadline = marks.t0 + budget
        n, consecutive = 0, 0
        while time.perf_counter() < deadline and (counts is None or n < counts[i]):
            t0 = time.perf_counter()
            try:
                command(n)
            except Exception as error:
                st.failed(f"{type(error).__name__}: {error}")
                consecutive += 1
                if consecutive >= MAX_CONSECUTIVE_ERRORS:
                    break
                continue
            st.latencies.append(time.perf_counter() - t0)
            n += 1
            consecutive = 0
        done[i] = n
        st.end = time.perf_counter()

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=budget + 300)
    after = cpu_snapshot(groups or {})
    hung = sum(t.is_alive() for t in threads)
    end = max((s.end for s in stats), default=0.0)
    elapsed = end - marks.t0 if marks.t0 and end else 0.0
    cpu = cpu_report(marks.cpu, after, elapsed, sum(done)) if marks.cpu and elapsed else ""
    errors = sum(s.errors for s in stats) + hung
    samples = [x for s in stats for x in s.samples][:5] + ([f"{hung} hung threads"] * bool(hung))
    truncated = counts is not None and sum(done) < sum(counts)
    latencies = [x for s in stats for x in s.latencies]
    return Load(label, done, latencies, errors, samples, elapsed, truncated, cpu)
