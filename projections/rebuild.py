"""Rebuilding project_states: replay everything into fresh tables, then swap them in.

The live tables keep serving (and being caught up) during the replay. A parallel rebuild
replays one partition of the projects per child process; a child opens its own store with
the picklable `open_store` it is given, so it needs nothing of the service.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from psycopg import sql

from domain.application import Portfolio
from projections.catchup import BATCH_SIZE, consumer_lock, position, run_projection
from projections.db import Database, Tx, ident
from projections.project_states import ProjectStatesProjector
from projections.schema import LIVE, REBUILD, Tables, create_tables, drop_tables

OpenStore = Callable[[], tuple[Database, Portfolio]]


@dataclass(frozen=True)
class PostgresStore:
    """Opens the event store and the read-model database of one PostgreSQL schema (picklable)."""

    conninfo: str
    schema: str
    eventsourcing_env: Mapping[str, str] = field(default_factory=dict)
    pool_size: int = 2

    def __call__(self) -> tuple[Database, Portfolio]:
        db = Database(
            dialect="postgres", conninfo=self.conninfo, schema=self.schema, pool_size=self.pool_size
        )
        # The event store's tables exist (the parent booted): a child creates none.
        return db, Portfolio(env={**self.eventsourcing_env, "CREATE_TABLE": "no"})


def replay(
    db: Database,
    portfolio: Portfolio,
    tables: Tables,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    until: int | None = None,
    partition: tuple[int, int] | None = None,
) -> int:
    """Catch the project-states `tables` up; `partition=(k, n)`: only the projects of k of n.

    A partition has its own tracking row; `until` stops at a notification id.
    """
    name = tables.tracking_name + (f"#{partition[0]}" if partition else "")
    return run_projection(
        db,
        portfolio,
        name,
        lambda: ProjectStatesProjector(portfolio.mapper, tables, partition=partition),
        batch_size=batch_size,
        progress=progress,
        until=until,
    )


def rebuild(
    db: Database,
    portfolio: Portfolio,
    *,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = BATCH_SIZE,
    processes: int = 1,
    open_store: OpenStore | None = None,
) -> int:
    """Replay everything into fresh tables, then swap them in atomically; return how many.

    With `processes` > 1 on PostgreSQL and an `open_store`, the replay runs in that many
    child processes. The swap happens under the live consumer's lock, after a last
    catch-up of the fresh tables.
    """
    with consumer_lock(db, REBUILD.tracking_name + "_guard", timeout_s=5):
        with db.transaction() as tx:
            drop_tables(tx, REBUILD)
            tx.execute("DELETE FROM pr_tracking WHERE name = %s", (REBUILD.tracking_name,))
            create_tables(tx, REBUILD, tag=uuid.uuid4().hex[:10])
        total = portfolio.recorder.max_notification_id() or 0
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, max(total, done))

        if processes > 1 and db.dialect == "postgres" and open_store is not None:
            _parallel_replay(db, open_store, total, processes, batch_size, progress)
            done = total
        else:
            replay(db, portfolio, REBUILD, batch_size=batch_size, progress=tick)
        with consumer_lock(db, LIVE.tracking_name):
            # The fresh tables have their own lock name, so this nests without deadlock.
            replay(db, portfolio, REBUILD, batch_size=batch_size, progress=tick)
            with db.transaction() as tx:
                _swap(tx)
    return done


def _replay_partition(open_store: OpenStore, until: int, k: int, n: int, batch_size: int) -> None:
    """One process of a parallel rebuild: the projects of partition k of n, up to `until`."""
    db, portfolio = open_store()
    try:
        replay(db, portfolio, REBUILD, batch_size=batch_size, until=until, partition=(k, n))
    finally:
        db.close()
        portfolio.close()


def _parallel_replay(
    db: Database,
    open_store: OpenStore,
    until: int,
    n: int,
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Replay (0, until] into the fresh tables with n processes, one partition each."""
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
        context.Process(target=_replay_partition, args=(open_store, until, k, n, batch_size))
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
