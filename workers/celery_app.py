"""The Celery app: Redis broker, tasks safe to run twice, Application built after fork."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_process_init, worker_process_shutdown

CATCH_UP_TASK = "panorama.catch_up"
PENDING_KEY = "panorama:catch_up:pending:"  # + the queue name
SAFETY_NET_SECONDS = 5.0
DELIVER_TASK = "panorama.deliver_due_alerts"
DIGEST_TASK = "panorama.send_alert_digests"
PROJECTIONS = ("project_states", "hash_chain", "alerts")  # what a catch-up task may name
ALL = "all"  # a catch-up task naming every projection, in order: what a commit enqueues

_services: Any = None


def make_celery(redis_url: str | None = None, queue: str | None = None) -> Celery:
    """A Celery app configured for at-least-once delivery of idempotent tasks."""
    from service import log_redaction
    from service.config import Settings

    log_redaction.install()
    url = redis_url or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    digest_hour = Settings.from_env().digest_hour_utc
    app = Celery("panorama", broker=url, include=["workers.tasks"])
    app.conf.update(
        task_default_queue=queue or os.environ.get("CELERY_QUEUE", "panorama"),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 300},
        timezone="UTC",
        enable_utc=True,
        beat_schedule={
            f"catch-up-safety-net:{name}": {
                "task": CATCH_UP_TASK,
                "schedule": SAFETY_NET_SECONDS,
                "args": [name],
            }
            for name in PROJECTIONS
        }
        | {"deliver-due-alerts": {"task": DELIVER_TASK, "schedule": SAFETY_NET_SECONDS}}
        | {
            "alert-digests": {
                "task": DIGEST_TASK,
                "schedule": crontab(minute=0, hour=digest_hour),
            }
        },
    )
    return app


app = make_celery()


def services() -> Any:
    """The Services of this worker process (built in worker_process_init)."""
    global _services
    if _services is None:
        from service.bootstrap import bootstrap
        from service.config import Settings

        settings = Settings.from_env()
        # Workers apply the catch-up themselves: never enqueue from inside a worker.
        _services = bootstrap(settings, in_worker=True)
    return _services


@worker_process_init.connect
def _init_worker(**_: Any) -> None:
    global _services
    _services = None  # never use a pool inherited across fork
    services()


@worker_process_shutdown.connect
def _close_worker(**_: Any) -> None:
    if _services is not None:
        _services.close()
