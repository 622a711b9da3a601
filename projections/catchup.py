"""Catching projections up with the notification log: exactly once, in order.

One consumer at a time per projection: on PostgreSQL a session-level advisory lock, on
SQLite a process lock plus SQLite's single writer. Each batch is applied in one
transaction with a compare-and-set of the tracking position, so a redelivered task, a
crash or a second consumer can never apply an event twice or skip one.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from eventsourcing.persistence import Notification
from psycopg import sql

from domain.application import Portfolio
from projections.db import Database, Tx, as_ts
from projections.schema import PROJECTION

log = logging.getLogger(__name__)
BATCH_SIZE = 2000
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


class PositionMoved(Exception):
    """Another consumer advanced the tracking position: this batch was not applied."""


@dataclass(frozen=True)
class Status:
    name: str
    position: int
    head: int
    updated_at: datetime | None
    last_error: str | None
    error_at: datetime | None

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)


def position(tx: Tx, name: str = PROJECTION) -> int:
    """The tracking position of a projection (0 when it has never run)."""
    value = tx.scalar("SELECT position FROM pr_tracking WHERE name = %s", (name,))
    return int(value or 0)


def lock_key(name: str, schema: str = "public") -> int:
    """A stable 63-bit advisory-lock key for a projection of one schema (advisory locks are
    database-wide: two deployments in two schemas of one database must not block each other)."""
    digest = hashlib.sha256(f"panorama:{schema}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@contextmanager
def consumer_lock(db: Database, name: str, timeout_s: float = 30.0) -> Iterator[None]:
    """Be the only consumer of projection `name` while the block runs."""
    with _process_locks_guard:
        local = _process_locks.setdefault(f"{db.schema}:{name}", threading.Lock())
    if not local.acquire(timeout=timeout_s):
        raise TimeoutError(f"projection {name} is busy in this process")
    try:
        if db.dialect != "postgres":
            yield
            return
        with db.session() as conn:
            conn.execute(
                sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{int(timeout_s * 1000)}ms"))
            )
            key = lock_key(name, db.schema)
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        local.release()


class Projector(Protocol):
    """Folds one batch of notifications into its tables, inside the batch's transaction."""

    def process(self, tx: Tx, batch: Sequence[Notification], /) -> object: ...


def run_projection(
    db: Database,
    portfolio: Portfolio,
    name: str,
    make_projector: Callable[[], Projector],
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    stop_after: int | None = None,
    until: int | None = None,
) -> int:
    """Catch the projection tracked as `name` up with the notification log; return how many.

    The one loop every projection shares: under `consumer_lock`, batches from the
    tracking position, each applied with a compare-and-set of that position in the same
    transaction. A fresh projector is made whenever another consumer moved the position
    (projectors may cache what they read under the lock).
    """
    applied = 0
    with consumer_lock(db, name):
        projector = make_projector()
        with db.transaction(write=False) as tx:
            start = position(tx, name)
        while stop_after is None or applied < stop_after:
            limit = batch_size if stop_after is None else min(batch_size, stop_after - applied)
            batch = portfolio.recorder.select_notifications(
                start=start, limit=limit, stop=until, inclusive_of_start=False
            )
            if not batch:
                break
            end = batch[-1].id
            try:
                with db.transaction() as tx:
                    moved = tx.execute(
                        "UPDATE pr_tracking SET position = %s, updated_at = %s "
                        "WHERE name = %s AND position = %s",
                        (end, datetime.now(UTC), name, start),
                    )
                    if moved != 1:
                        raise PositionMoved(name)
                    projector.process(tx, batch)
            except PositionMoved:
                log.info("projection %s was advanced by another consumer", name)
                projector = make_projector()
                with db.transaction(write=False) as tx:
                    start = position(tx, name)
                continue
            except Exception as error:
                record_error(db, name, error)
                raise
            applied += len(batch)
            start = end
            if progress is not None:
                progress(len(batch))
    return applied


def record_error(db: Database, name: str, error: BaseException) -> None:
    """Keep the last error of a projection for `panorama projections status`."""
    try:
        with db.transaction() as tx:
            tx.execute(
                "UPDATE pr_tracking SET last_error = %s, error_at = %s WHERE name = %s",
                (f"{type(error).__name__}: {error}"[:2000], datetime.now(UTC), name),
            )
    except Exception:  # the database itself may be what failed
        log.exception("could not record the error of projection %s", name)


def status(db: Database, portfolio: Portfolio) -> list[Status]:
    """Position, lag and last error of every projection."""
    head = portfolio.recorder.max_notification_id() or 0
    with db.transaction(write=False) as tx:
        rows = tx.fetch("SELECT * FROM pr_tracking ORDER BY name")

    return [
        Status(
            name=r["name"],
            position=int(r["position"]),
            head=head,
            updated_at=as_ts(r["updated_at"]),
            last_error=r["last_error"],
            error_at=as_ts(r["error_at"]),
        )
        for r in rows
    ]


def wait_for(db: Database, min_position: int, timeout_s: float, name: str = PROJECTION) -> int:
    """Wait (bounded) until projection `name` (the project states) has reached `min_position`."""
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        with db.transaction(write=False) as tx:
            current = position(tx, name)
        if current >= min_position or time.monotonic() >= deadline:
            return current
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
