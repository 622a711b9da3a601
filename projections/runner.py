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
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from eventsourcing.persistence import Notification
from psycopg import sql

from domain.application import Portfolio
from projections.db import Database, Tx, as_ts, ident
from projections.project_states import ProjectStatesProjector
from projections.schema import LIVE, PROJECTION, REBUILD, Tables, create_tables, drop_tables

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


def setup(db: Database, tables: Tables = LIVE, tag: str = "") -> None:
    """Create the tables and the tracking row of a projection (idempotent)."""
    with db.transaction() as tx:
        create_tables(tx, tables, tag=tag)
        tx.execute(
            "INSERT INTO pr_tracking (name, position) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING",
            (tables.tracking_name,),
        )


def position(tx: Tx, name: str = PROJECTION) -> int:
    """The tracking position of a projection (0 when it has never run)."""
    value = tx.scalar("SELECT position FROM pr_tracking WHERE name = %s", (name,))
    return int(value or 0)


def lock_key(name: str) -> int:
    """A stable 63-bit advisory-lock key for a projection name."""
    return int.from_bytes(hashlib.sha256(f"panorama:{name}".encode()).digest()[:8], "big") >> 1


@contextmanager
def consumer_lock(db: Database, name: str, timeout_s: float = 30.0) -> Iterator[None]:
    """Be the only consumer of projection `name` while the block runs."""
    with _process_locks_guard:
        local = _process_locks.setdefault(name, threading.Lock())
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
            conn.execute("SELECT pg_advisory_lock(%s)", (lock_key(name),))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(name),))
    finally:
        local.release()


class Projector(Protocol):
    """Folds one batch of notifications into its tables, inside the batch's transaction."""

    def process(self, tx: Tx, batch: Sequence[Notification], /) -> object: ...


def catch_up(
    db: Database,
    portfolio: Portfolio,
    tables: Tables = LIVE,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    stop_after: int | None = None,
    until: int | None = None,
    partition: tuple[int, int] | None = None,
) -> int:
    """Apply every notification past the project-states position; return how many.

    `until` stops at a notification id; `partition=(k, n)` applies only the projects
    whose id hashes to k of n (a parallel rebuild), under its own tracking row.
    """
    name = tables.tracking_name + (f"#{partition[0]}" if partition else "")
    return run_projection(
        db,
        portfolio,
        name,
        lambda: ProjectStatesProjector(portfolio.mapper, tables, partition=partition),
        batch_size=batch_size,
        progress=progress,
        stop_after=stop_after,
        until=until,
    )


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


def rebuild(
    db: Database,
    portfolio: Portfolio,
    *,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = BATCH_SIZE,
    processes: int = 1,
    settings: Any = None,
) -> int:
    """Replay everything into fresh tables, then swap them in atomically.

    The live tables keep serving (and being caught up) during the replay; the swap
    happens under the live consumer's lock, after a last catch-up of the fresh tables.
    """
    with consumer_lock(db, REBUILD.tracking_name + "_guard", timeout_s=5):
        with db.transaction() as tx:
            drop_tables(tx, REBUILD)
            tx.execute("DELETE FROM pr_tracking WHERE name = %s", (REBUILD.tracking_name,))
        setup(db, REBUILD, tag=uuid.uuid4().hex[:10])
        total = portfolio.recorder.max_notification_id() or 0
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, max(total, done))

        if processes > 1 and db.dialect == "postgres" and settings is not None:
            _parallel_replay(db, settings, total, processes, batch_size, progress)
            done = total
        else:
            catch_up(db, portfolio, REBUILD, batch_size=batch_size, progress=tick)
        with consumer_lock(db, LIVE.tracking_name):
            # The fresh tables have their own lock name, so this nests without deadlock.
            catch_up(db, portfolio, REBUILD, batch_size=batch_size, progress=tick)
            with db.transaction() as tx:
                _swap(tx)
    return done


def _replay_partition(settings: Any, until: int, k: int, n: int, batch_size: int) -> None:
    """One process of a parallel rebuild: the projects of partition k of n, up to `until`."""
    from service.bootstrap import bootstrap

    services = bootstrap(settings, in_worker=True)
    try:
        catch_up(
            services.db,
            services.portfolio,
            REBUILD,
            batch_size=batch_size,
            until=until,
            partition=(k, n),
        )
    finally:
        services.close()


def _parallel_replay(
    db: Database,
    settings: Any,
    until: int,
    n: int,
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Replay (0, until] into the fresh tables with n processes, one partition each."""
    import multiprocessing

    names = [f"{REBUILD.tracking_name}#{k}" for k in range(n)]
    with db.transaction() as tx:
        for name in names:
            tx.execute(
                "INSERT INTO pr_tracking (name, position) VALUES (%s, 0) "
                "ON CONFLICT (name) DO UPDATE SET position = 0",
                (name,),
            )
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=_replay_partition, args=(settings, until, k, n, batch_size))
        for k in range(n)
    ]
    for proc in procs:
        proc.start()
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(0.5)
            if progress is not None:
                with db.transaction(write=False) as tx:
                    slowest = min(position(tx, name) for name in names)
                progress(slowest, max(until, slowest))
    finally:
        for proc in procs:
            proc.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"a rebuild process failed (exit codes {failed})")
    with db.transaction() as tx:
        reached = [position(tx, name) for name in names]
        if min(reached) < until:
            raise RuntimeError(f"rebuild partitions stopped early at {reached}, not {until}")
        tx.execute(
            "UPDATE pr_tracking SET position = %s WHERE name = %s", (until, REBUILD.tracking_name)
        )
        tx.execute("DELETE FROM pr_tracking WHERE name LIKE %s", (REBUILD.tracking_name + "#%",))
    if progress is not None:
        progress(until, until)


def _swap(tx: Tx) -> None:
    for name in LIVE.all():
        tx.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(name + "__old")))
        tx.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident(name), ident(name + "__old"))
        )
    for live, fresh in zip(LIVE.all(), REBUILD.all(), strict=True):
        tx.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident(fresh), ident(live)))
    for name in LIVE.all():
        tx.execute(sql.SQL("DROP TABLE {}").format(ident(name + "__old")))
    rebuilt = position(tx, REBUILD.tracking_name)
    tx.execute(
        "UPDATE pr_tracking SET position = %s, updated_at = %s, last_error = NULL WHERE name = %s",
        (rebuilt, datetime.now(UTC), LIVE.tracking_name),
    )
    tx.execute("DELETE FROM pr_tracking WHERE name = %s", (REBUILD.tracking_name,))


def wait_for(db: Database, min_position: int, timeout_s: float) -> int:
    """Wait (bounded) until the live projection has reached `min_position`."""
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        with db.transaction(write=False) as tx:
            current = position(tx)
        if current >= min_position or time.monotonic() >= deadline:
            return current
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def catch_ups() -> dict[str, Callable[..., int]]:
    """Every projection's catch-up, in the order a commit reaches them."""
    from projections import alerts, hashchain

    return {PROJECTION: catch_up, hashchain.NAME: hashchain.catch_up, alerts.NAME: alerts.catch_up}


def catch_up_all(
    db: Database, portfolio: Portfolio, *, batch_size: int = BATCH_SIZE
) -> dict[str, int]:
    """Catch every projection up, each on its own; a failure of one does not stop the others."""
    applied: dict[str, int] = {}
    first_error: Exception | None = None
    for name, run in catch_ups().items():
        try:
            applied[name] = run(db, portfolio, batch_size=batch_size)
        except Exception as error:  # recorded in pr_tracking by the runner; raised below
            first_error = first_error or error
    if first_error is not None:
        raise first_error
    return applied


def install_trigger(services: Any, *, in_worker: bool = False) -> None:
    """Create the read models, and decide how a committed command reaches them.

    With REDIS_URL set, a Celery task is enqueued (the workers catch up); otherwise
    the catch-up runs in-process right after the command (the embedded default).
    Both cover every projection: project_states, the hash chain and alerts.
    """
    from projections import alerts, hashchain, verify_log

    setup(services.db)
    hashchain.setup(services.db)
    alerts.setup(services.db)
    verify_log.setup(services.db)
    if in_worker:
        return
    if services.settings.redis_url:
        from workers.enqueue import Enqueuer

        services.after_commit = Enqueuer(
            services.settings.redis_url, services.settings.celery_queue
        )
    else:
        from workers.delivery import deliver_due

        def catch_up_now(_position: int) -> None:
            try:
                catch_up_all(
                    services.db,
                    services.portfolio,
                    batch_size=services.settings.projection_batch_size,
                )
            finally:
                # Embedded: due alert deliveries go out here, bounded (docs/alerts.md).
                deliver_due(
                    services.db,
                    policy=services.settings.webhook_policy(),
                    limit=10,
                    timeout_s=2.0,
                    smtp_url=services.settings.smtp_url,
                )

        services.after_commit = catch_up_now
