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

from domain.application import Portfolio
from projections.db import Database, Tx, as_ts
from projections.schema import PROJECTION

log = logging.getLogger(__name__)
BATCH_SIZE = 2000
WAIT_FIRST_S, WAIT_EVERY_S = 0.002, 0.02  # wait_for's polling of a tracking position
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


@dataclass
class Warm:
    """A projector kept between catch-ups in this process, with the tracking row it left:
    reused only while that row is unchanged (no other consumer, no rebuild, came between)."""

    owner: object  # the Portfolio it was made for
    projector: Projector
    position: int
    updated_at: datetime | None


def tracking(tx: Tx, name: str) -> tuple[int, datetime | None]:
    """The tracking position of a projection and when it was last written."""
    row = tx.fetchone("SELECT position, updated_at FROM pr_tracking WHERE name = %s", (name,))
    return (0, None) if row is None else (int(row["position"]), as_ts(row["updated_at"]))


def read_tracking(db: Database, name: str) -> tuple[int, datetime | None]:
    """`tracking`, read in one statement (on PostgreSQL the process's long-lived connection,
    not a pooled read-only transaction: one round trip instead of five)."""
    row = db.quick("SELECT position, updated_at FROM pr_tracking WHERE name = %s", (name,))
    return (0, None) if row is None else (int(row["position"]), as_ts(row["updated_at"]))


def tracking_position(db: Database, name: str = PROJECTION) -> int:
    """`position`, in one statement (see `read_tracking`)."""
    row = db.quick("SELECT position FROM pr_tracking WHERE name = %s", (name,))
    return 0 if row is None else int(row["position"])


def tracking_positions(db: Database) -> dict[str, int]:
    """Every projection's tracking position, in one statement."""
    rows = db.quick_all("SELECT name, position FROM pr_tracking")
    return {str(r["name"]): int(r["position"]) for r in rows}


def position(tx: Tx, name: str = PROJECTION) -> int:
    """The tracking position of a projection (0 when it has never run)."""
    value = tx.scalar("SELECT position FROM pr_tracking WHERE name = %s", (name,))
    return int(value or 0)


def lock_key(name: str, schema: str = "public") -> int:
    """A stable 63-bit advisory-lock key for a projection name in a schema (advisory locks
    are per database: deployments in other schemas of it must not wait for ours)."""
    text = f"panorama:{name}" if schema == "public" else f"panorama:{schema}:{name}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


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
        # On the process's one long-lived connection: no new connection per catch-up.
        key = lock_key(name, db.schema)
        db.try_advisory_lock(key, timeout_s)
        try:
            yield
        finally:
            db.advisory_unlock(key)
    finally:
        local.release()


class PassReads:
    """The notification batches read in one pass of every projection, shared between the
    projections that start at the same position (most often all of them): the log is
    append-only and its ids gapless, so a batch read earlier in the pass is what a read now
    would return, bar commits since, which the next pass applies (a commit after a task's
    last pass began enqueues a task of its own). One pass only: never kept between passes;
    and at most `KEPT` notifications (the live path's few batches, not a long backlog's)."""

    KEPT = 2 * BATCH_SIZE

    def __init__(self, portfolio: Portfolio) -> None:
        self.portfolio = portfolio
        self._batches: dict[tuple[int, int], Sequence[Notification]] = {}
        self._kept = 0

    def select(self, start: int, limit: int) -> Sequence[Notification]:
        """The notifications after `start`, at most `limit` (read once per pass)."""
        found = self._batches.get((start, limit))
        if found is None:
            found = self.portfolio.recorder.select_notifications(
                start=start, limit=limit, inclusive_of_start=False
            )
            if self._kept + len(found) <= self.KEPT:
                self._batches[(start, limit)] = found
                self._kept += len(found)
        return found


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
    keep: dict[str, Warm] | None = None,
    reads: PassReads | None = None,
) -> int:
    """Catch the projection tracked as `name` up with the notification log; return how many.

    The one loop every projection shares: under `consumer_lock`, batches from the
    tracking position, each applied with a compare-and-set of that position in the same
    transaction. A fresh projector is made whenever another consumer moved the position
    (projectors may cache what they read under the lock). With `keep`, the projector of the
    last catch-up in this process is reused when the tracking row is still the one it wrote,
    and kept again afterwards (never after a failure). With `reads` (and no `until`), the
    batches come from the pass's shared reads.
    """
    applied = 0
    with consumer_lock(db, name):
        start, stamp = read_tracking(db, name)
        warm = keep.pop(name, None) if keep is not None else None
        if warm is not None and (warm.owner, warm.position, warm.updated_at) == (
            portfolio,
            start,
            stamp,
        ):
            projector = warm.projector
        else:
            projector = make_projector()
        while stop_after is None or applied < stop_after:
            limit = batch_size if stop_after is None else min(batch_size, stop_after - applied)
            if reads is not None and until is None and reads.portfolio is portfolio:
                batch = reads.select(start, limit)
            else:
                batch = portfolio.recorder.select_notifications(
                    start=start, limit=limit, stop=until, inclusive_of_start=False
                )
            if not batch:
                break
            end = batch[-1].id
            now = datetime.now(UTC)
            try:
                with db.transaction() as tx:
                    moved = tx.execute(
                        "UPDATE pr_tracking SET position = %s, updated_at = %s "
                        "WHERE name = %s AND position = %s",
                        (end, now, name, start),
                    )
                    if moved != 1:
                        raise PositionMoved(name)
                    projector.process(tx, batch)
            except PositionMoved:
                log.info("projection %s was advanced by another consumer", name)
                projector = make_projector()
                start, stamp = read_tracking(db, name)
                continue
            except Exception as error:
                record_error(db, name, error)
                raise
            applied += len(batch)
            start, stamp = end, now
            if progress is not None:
                progress(len(batch))
            if len(batch) < limit and until is None:
                break  # the head when read: a later commit enqueues another catch-up
        if keep is not None:
            keep[name] = Warm(portfolio, projector, start, stamp)
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
    """Wait (bounded) until projection `name` (the project states) has reached `min_position`.

    Polled 2, 4, 8, 16, then every 20 ms: a read of the position is one statement on the
    process's long-lived connection, so a fine cadence costs little, and a coarser one
    would add up to its period to what a client sees of the lag (80 ms at 100 ms apart).
    """
    deadline = time.monotonic() + timeout_s
    delay = WAIT_FIRST_S
    while True:
        current = tracking_position(db, name)
        if current >= min_position or time.monotonic() >= deadline:
            return current
        time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
        delay = min(delay * 2, WAIT_EVERY_S)
