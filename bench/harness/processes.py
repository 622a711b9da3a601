"""Subprocesses in their own process group, and real `celery worker` processes.

Used by the benchmarks and by the integration tests (tests/integration/conftest.py): the
standard library only, so that importing it loads nothing of the service.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

from bench.harness.config import PG_URL

ROOT = Path(__file__).resolve().parents[2]


def spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start `args` from the repository root, output to `log_path`, in a session of its own."""
    with open(log_path, "wb") as out:
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped or killed as a whole
        )


def stop(proc: subprocess.Popen[bytes], grace_s: float = 8.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left of it."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        with suppress(ProcessLookupError):  # the leader is gone; no forked child outlives it
            os.killpg(proc.pid, signal.SIGKILL)
        return


def kill(proc: subprocess.Popen[bytes]) -> None:
    """kill -9 the process and its children (its whole process group)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


class CeleryWorkers:
    """Starts and stops `celery worker` processes with one environment (schema, queue)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, concurrency: int = 1, *, loglevel: str = "INFO", name: str | None = None
    ) -> subprocess.Popen[bytes]:
        """One prefork worker on the environment's CELERY_QUEUE, logging to worker-N.log."""
        n = len(self.procs)
        node = name or f"w{n}-{uuid.uuid4().hex[:6]}@%h"
        args = [sys.executable, "-m", "celery", "-A", "workers.main:app", "worker"]
        args += [f"--loglevel={loglevel}", f"--concurrency={concurrency}", "--pool=prefork"]
        args += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-n", node]
        proc = spawn(args, self.env, self.log_dir / f"worker-{n}.log")
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """kill -9 the worker and its pool children."""
        kill(proc)

    def stop_all(self, *, graceful: bool = False) -> None:
        """Stop every worker still running: SIGTERM first when `graceful`, else kill -9."""
        for proc in self.procs:
            if proc.poll() is not None:
                continue
            if graceful:
                stop(proc)
            else:
                kill(proc)

    def logs(self, chars: int = 3000) -> str:
        """The end of every log in the log directory."""
        return "\n".join(
            p.read_text(errors="replace")[-chars:] for p in sorted(self.log_dir.glob("*.log"))
        )


def own_peak_mb() -> float:
    """This process's peak resident set since it started its program, in MB.

    `VmHWM` of /proc/self/status, not `ru_maxrss`: Linux carries `ru_maxrss` across
    `execve`, so a child started by `subprocess` (vfork, then exec) would report the
    bench process's own resident set when that was larger (at full scale the recorded
    portfolio's, ≈650 MB), not the child's. Elsewhere, `ru_maxrss`.
    """
    with suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_report(module: str, schema: str, batch_size: int) -> dict[str, Any]:
    """Run `python -m module` on `schema` of the bench database, with its projection batch
    size, and return the JSON report it prints on stdout (its stderr is kept for errors)."""
    env = dict(
        os.environ,
        DATABASE_URL=PG_URL,
        DATABASE_SCHEMA=schema,
        PYTHONPATH=str(ROOT),
        PROJECTION_BATCH_SIZE=str(batch_size),
    )
    out = subprocess.run(
        [sys.executable, "-m", module],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    report: dict[str, Any] = json.loads(out.stdout)
    return report
