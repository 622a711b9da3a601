"""Tasks name what to do; the state they act on is re-read every time."""

from __future__ import annotations

import logging

import redis
from celery import shared_task

from projections import alerts
from projections.registry import PROJECTIONS, catch_up, catch_up_all
from workers.celery_app import ALL, CATCH_UP_TASK, DELIVER_TASK, DIGEST_TASK, PENDING_KEY
from workers.delivery import deliver_due
from workers.digest import send_digests
from workers.main import services

log = logging.getLogger(__name__)


@shared_task(name=CATCH_UP_TASK, acks_late=True, reject_on_worker_lost=True)
def catch_up_projection(projection: str) -> int:
    """Catch projection `projection` (or "all" of them, in order) up with the log."""
    if projection != ALL and projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}")
    s = services()
    try:
        redis.Redis.from_url(s.settings.redis_url or "").delete(
            PENDING_KEY + s.settings.celery_queue
        )
    except redis.RedisError:
        log.warning("could not clear the pending flag")
    size = s.settings.projection_batch_size

    def deliver(name: str, applied: int) -> None:
        """New alerts: their delivery starts now, on another worker process, while the
        projections after the alerts catch up."""
        if name == alerts.NAME and applied:
            deliver_due_alerts.delay()

    if projection == ALL:
        counts = catch_up_all(s.db, s.portfolio, batch_size=size, then=deliver)
    else:
        counts = {projection: catch_up(s.db, s.portfolio, projection, batch_size=size)}
        deliver(projection, counts[projection])
    for name, applied in counts.items():
        if applied:
            log.info("projection %s: applied %d notifications", name, applied)
    return sum(counts.values())


@shared_task(name=DELIVER_TASK, acks_late=True, reject_on_worker_lost=True)
def deliver_due_alerts() -> dict[str, int]:
    """Attempt every due alert delivery once (safe to run twice: rows are claimed)."""
    s = services()
    return deliver_due(s.db, policy=s.settings.webhook_policy(), smtp_url=s.settings.smtp_url)


@shared_task(name=DIGEST_TASK, acks_late=True, reject_on_worker_lost=True)
def send_alert_digests() -> dict[str, int]:
    """Send the previous UTC day's digests (at most once per subscriber and day: claimed)."""
    s = services()
    return send_digests(s.db, policy=s.settings.webhook_policy(), smtp_url=s.settings.smtp_url)
