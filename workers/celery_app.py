"""The Celery app factory: Redis broker, tasks safe to run twice; imports nothing of ours.

The worker's own app, built from the settings, is `workers.main:app`.
"""

from __future__ import annotations

from celery import Celery
from celery.schedules import crontab

CATCH_UP_TASK = "panorama.catch_up"
PENDING_KEY = "panorama:catch_up:pending:"  # + the queue name
FLAG_TTL_S = 60  # the pending flag expires: a task lost with the flag set delays no commit longer
SAFETY_NET_SECONDS = 5.0
DELIVER_TASK = "panorama.deliver_due_alerts"
DIGEST_TASK = "panorama.send_alert_digests"
# what a catch-up task may name, in the order a catch-up of "all" runs them: the alerts
# right after the project states, so that their delivery starts before the other read models
PROJECTIONS = ("project_states", "alerts", "hash_chain", "editions", "programmes")
ALL = "all"  # a catch-up task naming every projection, in order: what a commit enqueues
DEFAULT_DIGEST_HOUR_UTC = 7


def make_celery(
    broker_url: str, queue: str = "panorama", *, digest_hour_utc: int = DEFAULT_DIGEST_HOUR_UTC
) -> Celery:
    """A Celery app configured for at-least-once delivery of idempotent tasks."""
    app = Celery("panorama", broker=broker_url, include=["workers.tasks"])
    app.conf.update(
        task_default_queue=queue,
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
                "schedule": crontab(minute=0, hour=digest_hour_utc),
            }
        },
    )
    return app
