"""Real worker processes for integration tests: Celery on the real Redis and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from projections.catchup import position
from service.bootstrap import Services

ROOT = Path(__file__).resolve().parents[2]


class Workers:
    """Starts and kills `celery worker` processes for one test's schema and queue."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, concurrency: int = 1) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.main:app",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                "--pool=prefork",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"w{len(self.procs)}-{uuid.uuid4().hex[:6]}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """kill -9 the worker and its pool children (its whole process group)."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.log_dir.glob("*.log"))


@pytest.fixture
def worker_env(pg_url: str, pg_schema: str, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=pg_url,
        DATABASE_SCHEMA=pg_schema,
        REDIS_URL=redis_url,
        CELERY_QUEUE=f"test-{uuid.uuid4().hex[:10]}",
        PROJECTION_BATCH_SIZE="40",
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture
def workers(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(worker_env, tmp_path)
    yield pool
    pool.stop_all()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition on the read model (bounded); never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def tracked(services: Services) -> int:
    with services.db.transaction(write=False) as tx:
        return position(tx)
