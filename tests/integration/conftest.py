"""Production services for integration tests: real PostgreSQL, Redis and Celery workers."""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from bench.harness.processes import CeleryWorkers
from domain.application import utc_today
from projections.catchup import position
from service.bootstrap import Services
from service.config import Settings
from workers.celery_app import make_celery
from workers.enqueue import Enqueuer

ROOT = Path(__file__).resolve().parents[2]
WORKER_BATCH_SIZE = 40  # small batches: a worker killed mid catch-up has committed some


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that gives a `panorama` or `celery` process these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(DATABASE_URL=settings.database_url, PYTHONPATH=str(ROOT))
    env["PROJECTION_BATCH_SIZE"] = str(settings.projection_batch_size)
    env["ALLOW_LOOPBACK_WEBHOOKS"] = str(settings.allow_loopback_webhooks).lower()
    if settings.is_postgres:
        env["DATABASE_SCHEMA"] = settings.database_schema
    if settings.audit_signing_key:
        env["AUDIT_SIGNING_KEY"] = settings.audit_signing_key
    if settings.redis_url:
        env.update(REDIS_URL=settings.redis_url, CELERY_QUEUE=settings.celery_queue)
    env.update(extra)
    return env


@dataclasses.dataclass
class Production:
    """One test's production stack: its PostgreSQL schema, its Celery queue on the real
    Redis, real `celery worker` processes with the same settings, and the services."""

    settings: Settings
    workers: CeleryWorkers
    make_services: Callable[..., Services]
    celery: Celery | None = None

    def services(
        self, today: Callable[[], date] = utc_today, *, enqueue: bool = True, **changes: Any
    ) -> Services:
        """Services on the stack, its settings (and its workers') changed by `changes`.

        With `enqueue`, every commit sends a catch-up task to the workers, as in production;
        without, commits trigger nothing and the test sends the tasks itself (`send`).
        """
        self.settings = dataclasses.replace(self.settings, **changes)
        self.workers.env = process_env(self.settings)
        services = self.make_services(self.settings, today=today)
        if enqueue:
            assert isinstance(services.after_commit, Enqueuer)
        else:
            services.after_commit = lambda position: None
        return services

    def send(self, task: str, *args: Any) -> None:
        """Send one task to the stack's queue."""
        if self.celery is None:
            assert self.settings.redis_url is not None
            self.celery = make_celery(self.settings.redis_url, self.settings.celery_queue)
        self.celery.send_task(task, args=list(args))


@pytest.fixture
def production(
    pg_settings: Settings,
    redis_url: str,
    make_services: Callable[..., Services],
    tmp_path: Path,
) -> Iterator[Production]:
    """The production stack of one test; its workers are killed afterwards."""
    settings = dataclasses.replace(
        pg_settings,
        redis_url=redis_url,
        celery_queue=f"test-{uuid.uuid4().hex[:10]}",
        projection_batch_size=WORKER_BATCH_SIZE,
    )
    workers = CeleryWorkers(process_env(settings), tmp_path)
    yield Production(settings, workers, make_services)
    workers.stop_all()


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
