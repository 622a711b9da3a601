"""Rebuilding project_states: replay everything into fresh tables, then swap them in.

The live tables keep serving (and being caught up) during the replay. On PostgreSQL the
replay folds each project's stream once (`stream_rebuild`) into tables without indexes,
then builds the indexes; a parallel rebuild folds one range of project ids per child
process, each child opening its own store with the picklable `open_store` it is given, so
it needs nothing of the service. The incremental projector then catches the fresh tables up
to the head under the live consumer's lock, and the swap is one transaction.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from multiprocessing.sharedctypes import Synchronized

from eventsourcing.persistence import StoredEvent
from psycopg import sql

from domain.application import Portfolio
from projections.catchup import BATCH_SIZE, consumer_lock, position, run_projection
from projections.db import Database, Tx, ident
from projections.figure_tables import (
    SPAN_PARTS,
    analyze_sums_sql,
    derive_spans_sql,
    derive_sums_sql,
    fill_name_keys,
)
from projections.project_states import (
    MINISTRIES_TOPIC_PREFIX,
    PROJECT_TOPIC_PREFIX,
    ProjectStatesProjector,
    apply_ministry_event,
)
from projections.schema import (
    LIVE,
    REBUILD,
    Tables,
    create_indexes,
    create_tables,
    drop_tables,
    index_groups,
    index_renames,
    spans_key,
)
from projections.stream_rebuild import replay_streams

OpenStore = Callable[[], tuple[Database, Portfolio]]
log = logging.getLogger(__name__)


@contextmanager
def _phase(phases: dict[str, float] | None, name: str) -> Iterator[None]:
    """Time one phase of a rebuild into `phases` (seconds, wall clock) and the log."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - t0
        if phases is not None:
            phases[name] = phases.get(name, 0.0) + seconds
        log.info("rebuild phase %s: %.2f s", name, seconds)


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
) -> int:
    """Catch the project-states `tables` up with the incremental projector (up to `until`)."""
    return run_projection(
        db,
        portfolio,
        tables.tracking_name,
        lambda: ProjectStatesProjector(portfolio.mapper, tables),
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
    phases: dict[str, float] | None = None,
) -> int:
    """Replay everything into fresh tables, then swap them in atomically; return how many.

    On PostgreSQL the replay is the stream-ordered one (`stream_rebuild`), with `processes`
    partitions when an `open_store` is given for the children; on SQLite it is the
    incremental projector's. The swap happens under the live consumer's lock, after a last
    catch-up of the fresh tables by the incremental projector. `phases`, when given,
    receives the seconds of each phase.
    """
    with consumer_lock(db, REBUILD.tracking_name + "_guard", timeout_s=5):
        fast = db.dialect == "postgres"
        tag = uuid.uuid4().hex[:10]
        with _phase(phases, "prepare"):
            with db.transaction() as tx:
                drop_tables(tx, REBUILD)
                tx.execute("DELETE FROM pr_tracking WHERE name = %s", (REBUILD.tracking_name,))
                create_tables(tx, REBUILD, tag=tag, indexes=not fast)
            until = portfolio.recorder.max_notification_id() or 0
        done = 0
        # The stream replay's total (for the progress bar) is counted while it starts.
        counting = ThreadPoolExecutor(max_workers=1) if fast else None
        total = counting.submit(_project_events, db, portfolio, until) if counting else None

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                known = until if total is None or not total.done() else total.result()
                progress(done, max(known, done))

        if fast:
            workers = processes if open_store is not None else 1
            with _phase(phases, "load"):
                _stream_replay(db, portfolio, until, workers, open_store, tick)
                _replay_reference(db, portfolio, until)
            if counting is not None:
                counting.shutdown()
                tick(0)  # the counted total, now known
            # After the bulk load, before the indexes: the fresh tables hold every row. The
            # figure tables are derived from them beside the other tables' index builds.
            _build_indexes(db, tag, phases)
            with db.transaction() as tx:
                tx.execute(
                    "UPDATE pr_tracking SET position = %s WHERE name = %s",
                    (until, REBUILD.tracking_name),
                )
        else:
            with _phase(phases, "load"):
                replay(db, portfolio, REBUILD, batch_size=batch_size, progress=tick)
        with consumer_lock(db, LIVE.tracking_name):
            # The fresh tables have their own lock name, so this nests without deadlock.
            with _phase(phases, "tail"):
                replay(db, portfolio, REBUILD, batch_size=batch_size, progress=tick)
            with _phase(phases, "swap"), db.transaction() as tx:
                _swap(tx, tag)
    return done


def _events_table(portfolio: Portfolio) -> str:
    name: str = portfolio.recorder.events_table_name  # type: ignore[attr-defined]
    return name


def _replay_reference(db: Database, portfolio: Portfolio, until: int) -> None:
    """The ministries reference (its one stream, in order) into the fresh codes table: the
    stream replay folds the projects only."""
    select = sql.SQL(
        "SELECT originator_id, originator_version, topic, state FROM {} "
        "WHERE notification_id <= %s AND topic LIKE %s ORDER BY originator_version"
    ).format(ident(_events_table(portfolio)))
    with db.transaction(write=False) as tx:
        rows = tx.fetch(select, (until, MINISTRIES_TOPIC_PREFIX + "%"))
    with db.transaction() as tx:
        for r in rows:
            stored = StoredEvent(
                r["originator_id"], r["originator_version"], r["topic"], r["state"]
            )
            apply_ministry_event(tx, REBUILD, portfolio.mapper.to_domain_event(stored))


def _project_events(db: Database, portfolio: Portfolio, until: int) -> int:
    """How many project events the stream replay will fold (for the progress bar)."""
    with db.transaction(write=False) as tx:
        count = tx.scalar(
            sql.SQL("SELECT count(*) FROM {} WHERE notification_id <= %s AND topic LIKE %s").format(
                ident(_events_table(portfolio))
            ),
            (until, PROJECT_TOPIC_PREFIX + "%"),
        )
    return int(count or 0)


def _stream_partition(
    open_store: OpenStore, until: int, k: int, n: int, counter: Synchronized[int]
) -> None:
    """One process of a parallel rebuild: fold the projects of partition k of n."""
    db, portfolio = open_store()

    def count(events: int) -> None:
        with counter.get_lock():
            counter.value += events

    try:
        replay_streams(
            db, portfolio.mapper, _events_table(portfolio), REBUILD, until, (k, n), count
        )
    finally:
        db.close()
        portfolio.close()


def _stream_replay(
    db: Database,
    portfolio: Portfolio,
    until: int,
    n: int,
    open_store: OpenStore | None,
    tick: Callable[[int], None],
) -> None:
    """Fold every project up to `until` into the fresh tables: here, or in n processes."""
    if n <= 1 or open_store is None:
        replay_streams(db, portfolio.mapper, _events_table(portfolio), REBUILD, until, (0, 1), tick)
        return
    context = multiprocessing.get_context("spawn")
    counters = [context.Value("q", 0) for _ in range(n)]
    procs = [
        context.Process(target=_stream_partition, args=(open_store, until, k, n, counters[k]))
        for k in range(n)
    ]
    for proc in procs:
        proc.start()
    reported = 0
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(0.2)
            now = sum(int(c.value) for c in counters)
            tick(now - reported)
            reported = now
    finally:
        for proc in procs:
            proc.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"a rebuild process failed (exit codes {failed})")
    tick(sum(int(c.value) for c in counters) - reported)


def _build_indexes(db: Database, tag: str, phases: dict[str, float] | None = None) -> None:
    """The fresh tables' keys and indexes, then their statistics (autovacuum may be off), one
    table per connection, the tables concurrently."""

    def build(table: sql.Identifier, statements: list[sql.Composed], analyze: bool) -> None:
        name = table.as_string().strip('"')
        with db.session() as conn:
            conn.execute("SET maintenance_work_mem = '256MB'")
            with _phase(phases, f"indexes {name}"):
                for statement in statements:
                    conn.execute(statement)
            if analyze:
                with _phase(phases, f"analyze {name}"):
                    conn.execute(sql.SQL("ANALYZE {}").format(table))

    def derive(step: Callable[[Tx], None], name: str, analyze: list[sql.Composed]) -> None:
        with _phase(phases, name), db.transaction() as tx:
            tx.execute("SET LOCAL work_mem = '256MB'")
            step(tx)
        if analyze:  # beside the spans' index builds rather than after them
            with _phase(phases, f"analyze {name}"), db.session() as conn:
                for statement in analyze:
                    conn.execute(statement)

    # The figure tables are derived from the states rows (their index builds only
    # share-lock them) beside the other tables' builds: the spans in parts, then the tables
    # derived from the spans beside the spans' two indexes, each on a connection of its own.
    derived = derived_from_spans(REBUILD)
    figures = (REBUILD.spans, *(table for _, _, filled, _ in derived for table in filled))
    groups = [g for g in index_groups(REBUILD, tag) if g[0] not in figures]
    spans = next(g for g in index_groups(REBUILD, tag) if g[0] == REBUILD.spans)[1]
    with _phase(phases, "indexes+analyze"), ThreadPoolExecutor(max_workers=8) as pool:
        first = [pool.submit(build, table, statements, True) for table, statements in groups]
        parts = [
            pool.submit(derive, partial(derive_spans_sql, tables=REBUILD, part=part), "spans", [])
            for part in SPAN_PARTS
        ]
        for future in parts:
            future.result()
        keys = pool.submit(derive, partial(fill_name_keys, tables=REBUILD), "name keys", [])
        then = [
            *(pool.submit(derive, step, name, analyze) for name, step, _, analyze in derived),
            *(pool.submit(build, REBUILD.spans, [statement], False) for statement in spans),
        ]
        for future in [*first, *then, keys]:
            future.result()
        with db.session() as conn:
            # the unique index becomes the key the live spans have (no scan: it is built)
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD PRIMARY KEY USING INDEX {}").format(
                    REBUILD.spans, ident(spans_key(tag))
                )
            )
            # the spans' visibility map set too, so the medians read them by index-only scans
            with _phase(phases, "analyze pr_spans"):
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(REBUILD.spans))


Derivation = tuple[str, Callable[[Tx], None], tuple[sql.Identifier, ...], list[sql.Composed]]


def derived_from_spans(tables: Tables) -> list[Derivation]:
    """The tables a rebuild derives in SQL from the spans once they are derived: (name,
    how, the tables it fills, how they are then analysed), each on its own connection beside
    the spans' index builds, analysed there too. Another table derived from the spans is one
    more entry here."""
    return [
        (
            "deltas+checkpoints",
            partial(derive_sums_sql, tables=tables),
            (tables.figure_deltas, tables.figure_checkpoints),
            analyze_sums_sql(tables),
        ),
    ]


def _swap(tx: Tx, tag: str) -> None:
    """The fresh tables renamed to the live ones' names (the live ones dropped), with their
    indexes (`tag`: the suffix a bulk load gave them), and the fresh tracking position."""
    for name in LIVE.all():
        tx.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(name + "__old")))
        tx.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident(name), ident(name + "__old"))
        )
    for live, fresh in zip(LIVE.all(), REBUILD.all(), strict=True):
        tx.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident(fresh), ident(live)))
    for name in LIVE.all():
        tx.execute(sql.SQL("DROP TABLE {}").format(ident(name + "__old")))
    if tx.dialect == "postgres":
        for statement in index_renames(tag):
            tx.execute(statement)
    else:  # SQLite renames no index: the fresh ones dropped, the live ones built
        create_indexes(tx, LIVE)
    rebuilt = position(tx, REBUILD.tracking_name)
    tx.execute(
        "UPDATE pr_tracking SET position = %s, updated_at = %s, last_error = NULL WHERE name = %s",
        (rebuilt, datetime.now(UTC), LIVE.tracking_name),
    )
    tx.execute("DELETE FROM pr_tracking WHERE name = %s", (REBUILD.tracking_name,))
