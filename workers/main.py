"""The worker's entry point: `celery -A workers.main:app worker` (or `panorama worker`).

`app` is built on first use from the settings in the environment, and each worker
process gets its Services from the composition root when it starts (never inherited
across fork).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

from service import log_redaction
from service.bootstrap import Services, bootstrap
from service.config import Settings
from service.heap import freeze_boot_heap
from workers.celery_app import make_celery

_app: Celery | None = None
_services: Services | None = None


def worker_app(settings: Settings | None = None) -> Celery:
    """The Celery app of this deployment (built once, from `settings` or the environment)."""
    global _app
    if _app is None:
        log_redaction.install()  # every log line of the worker, as in the web process
        settings = settings or Settings.from_env()
        _app = make_celery(
            settings.redis_url or "redis://127.0.0.1:6379/0",
            settings.celery_queue,
            digest_hour_utc=settings.digest_hour_utc,
        )
        worker_process_init.connect(_init_worker, weak=False, dispatch_uid="panorama-init")
        worker_process_shutdown.connect(_close_worker, weak=False, dispatch_uid="panorama-close")
    return _app


def __getattr__(name: str) -> Any:
    """`workers.main:app`, for the celery command line, built when it is first asked for."""
    if name == "app":
        return worker_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def services() -> Services:
    """The Services of this worker process (built in worker_process_init)."""
    global _services
    if _services is None:
        # Workers apply the catch-up themselves: never enqueue from inside a worker.
        _services = bootstrap(Settings.from_env(), in_worker=True)
    return _services


def _init_worker(**_: Any) -> None:
    global _services
    _services = None  # never use a pool inherited across fork
    services()
    freeze_boot_heap()  # as the web workers do: full collections skip what boot built


def _close_worker(**_: Any) -> None:
    if _services is not None:
        _services.close()
