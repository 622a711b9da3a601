"""Tell the workers that new events were committed (used by the web process)."""

from __future__ import annotations

import logging

import redis

from workers.celery_app import ALL, CATCH_UP_TASK, FLAG_TTL_S, PENDING_KEY, make_celery

log = logging.getLogger(__name__)


class Enqueuer:
    """Per burst of commits, one task that catches every projection up (a Redis flag
    coalesces the burst)."""

    def __init__(self, redis_url: str, queue: str) -> None:
        self.redis = redis.Redis.from_url(redis_url)
        self.celery = make_celery(redis_url, queue)
        self.key = PENDING_KEY + queue

    def __call__(self, position: int) -> None:
        try:
            # The task clears the flag once it finds nothing new (then makes a last pass), so
            # a commit after that enqueues again (workers/tasks.py).
            if self.redis.set(self.key, position, nx=True, ex=FLAG_TTL_S):
                self.celery.send_task(CATCH_UP_TASK, args=[ALL])
        except redis.RedisError:
            # The save has committed; beat's periodic catch-up will pick it up.
            log.warning("could not enqueue the catch-up; the periodic task will run it")
