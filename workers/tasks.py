"""Tasks name what to do; the state they act on is re-read every time."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from functools import cache

import redis
from celery import shared_task

from projections import alerts
from projections.registry import PROJECTIONS, catch_up, catch_up_all
from workers.celery_app import (
    ALL,
    CATCH_UP_TASK,
    DELIVER_TASK,
    DIGEST_TASK,
    FLAG_TTL_S,
    PENDING_KEY,
)
from workers.delivery import deliver_due
from workers.digest import send_digests
from workers.main import services

log = logging.getLogger(__name__)


# A catch-up task goes on while commits keep coming, for at most this long; then it hands
# over to a new task (queued behind whatever else is waiting: deliveries, digests).
BURST_S = 2.0
DELIVER = ":deliver"  # suffix of the flag of a queued delivery task


@cache
def _redis(url: str) -> redis.Redis:
    """One client (and connection pool) per worker process, not one per task."""
    return redis.Redis.from_url(url)


@shared_task(name=CATCH_UP_TASK, acks_late=True, reject_on_worker_lost=True)
def catch_up_projection(projection: str) -> int:
    """Catch projection `projection` (or "all" of them, in order) up with the log.

    For "all" (what a commit enqueues), one task serves a whole burst of commits. The web
    process enqueues a task only when it sets the pending flag (workers/enqueue.py); this
    task leaves the flag set while it finds new events, so the commits of the burst enqueue
    nothing. Once a pass finds nothing it clears the flag, then makes one last pass: a
    commit that found the flag set committed before it was cleared, so that pass sees it,
    and a commit after the clear enqueues a task of its own. After BURST_S it leaves the
    flag set and queues its successor instead.
    """
    if projection != ALL and projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}")
    s = services()
    size = s.settings.projection_batch_size
    key = PENDING_KEY + s.settings.celery_queue

    def deliver(name: str, applied: int) -> None:
        """New alerts: their delivery starts now, on another worker process, while the
        projections after the alerts catch up (a slow webhook receiver never holds up the
        read model). One delivery task at a time is queued (its flag is cleared when it
        starts), not one per pass of a burst."""
        if name == alerts.NAME and applied and _flag(s.settings.redis_url or "", key + DELIVER):
            deliver_due_alerts.delay()

    if projection != ALL:
        # beat's safety net: a flag left set by a lost task is cleared within its period
        _clear(s.settings.redis_url or "", key)
        counts = {projection: catch_up(s.db, s.portfolio, projection, batch_size=size)}
        _log(counts)
        deliver(projection, counts[projection])
        return sum(counts.values())
    deadline = time.monotonic() + BURST_S
    totals: Counter[str] = Counter()

    def one_pass() -> int:
        counts = catch_up_all(s.db, s.portfolio, batch_size=size, then=deliver)
        totals.update(counts)
        return sum(counts.values())

    try:
        while one_pass():
            if time.monotonic() >= deadline:
                _hand_over(s.settings.redis_url or "", key)
                return sum(totals.values())
        _clear(s.settings.redis_url or "", key)
        one_pass()
    finally:
        _log(totals)
    return sum(totals.values())


def _log(counts: Mapping[str, int]) -> None:
    for name, applied in counts.items():
        if applied:
            log.info("projection %s: applied %d notifications", name, applied)


def _clear(url: str, key: str) -> None:
    try:
        _redis(url).delete(key)
    except redis.RedisError:
        # The flag expires; until then beat's periodic catch-up covers the commits.
        log.warning("could not clear the pending flag")


def _flag(url: str, key: str) -> bool:
    """Set `key` unless it is set; True if this call set it (or Redis could not be asked)."""
    try:
        return bool(_redis(url).set(key, 1, nx=True, ex=FLAG_TTL_S))
    except redis.RedisError:
        return True


def _hand_over(url: str, key: str) -> None:
    """Queue the next catch-up of the burst, the pending flag still set (its expiry renewed)."""
    try:
        _redis(url).expire(key, FLAG_TTL_S)
    except redis.RedisError:
        log.warning("could not renew the pending flag")
    catch_up_projection.delay(ALL)


@shared_task(name=DELIVER_TASK, acks_late=True, reject_on_worker_lost=True)
def deliver_due_alerts() -> dict[str, int]:
    """Attempt every due alert delivery once (safe to run twice: rows are claimed)."""
    s = services()
    _clear(s.settings.redis_url or "", PENDING_KEY + s.settings.celery_queue + DELIVER)
    return deliver_due(s.db, policy=s.settings.webhook_policy(), smtp_url=s.settings.smtp_url)


@shared_task(name=DIGEST_TASK, acks_late=True, reject_on_worker_lost=True)
def send_alert_digests() -> dict[str, int]:
    """Send the previous UTC day's digests (at most once per subscriber and day: claimed)."""
    s = services()
    return send_digests(s.db, policy=s.settings.webhook_policy(), smtp_url=s.settings.smtp_url)
