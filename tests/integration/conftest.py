"""Real worker processes for integration tests: Celery on the real Redis and PostgreSQL."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.harness.processes import CeleryWorkers
from projections.catchup import position
from service.bootstrap import Services

ROOT = Path(__file__).resolve().parents[2]


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
def workers(worker_env: dict[str, str], tmp_path: Path) -> Iterator[CeleryWorkers]:
    """Real `celery worker` processes on this test's schema and queue, killed afterwards."""
    pool = CeleryWorkers(worker_env, tmp_path)
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
