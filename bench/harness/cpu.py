"""CPU accounting of the processes under test (from /proc), idleness, optional py-spy profiles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.harness.config import log

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stats() -> Iterator[tuple[int, str, int, float]]:
    """(pid, comm, process group, CPU seconds) of every live process."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.find("(") + 1 : raw.rfind(")")]
        rest = raw[raw.rfind(")") + 2 :].split()
        yield int(entry.name), comm, int(rest[2]), (int(rest[11]) + int(rest[12])) / CLK_TCK


PG = "postgres"


def cpu_snapshot(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process group, of PostgreSQL, Redis and this process.

    PostgreSQL is also kept per backend ("postgres#PID"), so that `cpu_report` counts the
    backends alive at the end only: a backend of another client that exited in between would
    otherwise make the difference negative.
    """
    out = dict.fromkeys([*groups, PG, "redis", "bench process"], 0.0)
    by_group = {pgid: name for name, pgid in groups.items()}
    for pid, comm, pgid, seconds in proc_stats():
        if pgid in by_group:
            out[by_group[pgid]] += seconds
        elif comm == "postgres":
            out[PG] += seconds
            out[f"{PG}#{pid}"] = seconds
        elif comm.startswith("redis-server"):
            out["redis"] += seconds
        elif pid == os.getpid():
            out["bench process"] += seconds
    return out


def settle(
    groups: dict[str, int], *, quiet: float = 0.1, window_s: float = 0.5, timeout_s: float = 60.0
) -> float:
    """Wait until the process groups use less than `quiet` cores (workers done booting).

    gunicorn answers /readyz as soon as one worker has loaded the app, while the others may
    still be importing; a measurement must not start before they are all idle (two quiet
    windows in a row). Returns the seconds waited.
    """
    start = time.monotonic()
    before = cpu_snapshot(groups)
    quiet_windows = 0
    while time.monotonic() - start < timeout_s and quiet_windows < 2:
        time.sleep(window_s)
        after = cpu_snapshot(groups)
        used = sum(after[name] - before[name] for name in groups) / window_s
        quiet_windows = quiet_windows + 1 if used < quiet else 0
        before = after
    return time.monotonic() - start


def cpu_by_process(pgid: int) -> dict[int, float]:
    """CPU seconds so far of each live process of a process group."""
    return {pid: seconds for pid, _, group, seconds in proc_stats() if group == pgid}


def cpu_report(
    before: dict[str, float], after: dict[str, float], wall: float, commands: int = 0
) -> str:
    """Cores used by each component between two snapshots (machine-wide for PG and Redis),
    and, given the commands made, the CPU milliseconds each component spent per command."""
    used = cpu_used(before, after)
    text = "cores used: " + ", ".join(f"{name} {x / wall:.2f}" for name, x in used.items())
    if commands:
        per = [f"{name} {x * 1000 / commands:.2f}" for name, x in used.items()]
        text += "; CPU ms per command: " + ", ".join(per)
    return text


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each component used between two snapshots (PostgreSQL: the backends
    alive at the end, each from its value at the start or from 0 if it started since)."""
    used = {name: after[name] - before.get(name, 0.0) for name in after if "#" not in name}
    used[PG] = sum(
        value - before.get(name, 0.0) for name, value in after.items() if name.startswith(f"{PG}#")
    )
    return used


@contextmanager
def profiled(pid: int, out: Path | None, duration_s: float, subprocesses: bool) -> Iterator[None]:
    """Sample `pid` with py-spy (collapsed stacks) while the block runs, when `out` is set."""
    if out is None:
        yield
        return
    spy = Path(sys.executable).with_name("py-spy")
    args = [str(spy), "record", "--nonblocking", "--format", "raw", "-r", "200"]
    args += os.environ.get("BENCH_PYSPY_ARGS", "").split()  # e.g. --gil, --idle
    args += ["-d", str(max(1, int(duration_s))), "-p", str(pid), "-o", str(out)]
    if subprocesses:
        args.append("--subprocesses")
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        yield
    finally:
        try:
            proc.wait(timeout=duration_s + 30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log(f"py-spy profile written to {out}")
