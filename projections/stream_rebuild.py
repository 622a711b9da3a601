"""The fast replay of a rebuild on PostgreSQL: stream order, one fold per project, binary COPY.

Each project's rows depend on its own events only, so a full replay reads the stored events
table in stream order (`originator_id, originator_version`), folds each project's history
once in memory, exactly as the incremental projector would have written it (a backdated
event retires the live rows it changes and writes them anew, with no SQL round trip), and
copies the rows in binary into fresh tables that have no index yet. A partition is a range
of project ids, so partitions read disjoint ranges of the primary key and write into the
same tables.
"""

from __future__ import annotations

import bisect
import gc
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper
from psycopg import sql
from psycopg.rows import tuple_row

from domain.project import Project
from domain.project_facts import FACTS
from projections.db import Database, Tx, ident
from projections.event_decoder import event_decoder
from projections.project_states import PROJECT_TOPIC_PREFIX, event_row, state_row
from projections.schema import COLUMN_TYPES, EVENT_COLUMNS, STATE_COLUMNS, STATE_KEYS, Tables
from projections.state import ProjectState, evolve, sort_date

_PG = COLUMN_TYPES["postgres"]
STATE_TYPES: tuple[str, ...] = (
    "text",
    "date",
    "timestamptz",
    "timestamptz",
    "integer",
    *(_PG[f.kind] for f in FACTS if f.column is not None),
    "text",
)
EVENT_TYPES: tuple[str, ...] = (
    "text",
    "integer",
    "bigint",
    "date",
    "date",
    "timestamptz",
    *("text",) * 4,
    "boolean",
    "text",
    "bytea",
)
PROJECT_COLUMNS = ("project_id", "registered_on", "tail_valid_from")
PROJECT_TYPES = ("text", "date", "date")
FLUSH_EVENTS = 20_000  # rows buffered before a COPY: bounds memory, amortises the statements
READ_BATCH = 5_000
assert len(STATE_TYPES) == len(STATE_COLUMNS) and len(STATE_KEYS) == 5
assert len(EVENT_TYPES) == len(EVENT_COLUMNS)


@dataclass
class ProjectRows:
    """What one project's history writes: its states rows, events rows and projects row."""

    states: list[list[Any]] = field(default_factory=list)
    events: list[list[Any]] = field(default_factory=list)
    project: tuple[str, date, date] | None = None


def fold_history(records: Sequence[tuple[Any, int, str, bytes]]) -> ProjectRows:
    """Fold one project's (event, notification id, topic, stored state) in version order into
    the rows the incremental projector writes when it applies them one after another."""
    rows: dict[tuple[date, datetime], list[Any]] = {}
    live: list[tuple[date, datetime, ProjectState]] = []  # by valid_from
    history: list[tuple[date, int, Any]] = []  # by (sort date, version)
    out = ProjectRows()
    registered_on: date | None = None
    project_id = str(records[0][0].originator_id) if records else None

    def add(state: ProjectState, ts: datetime) -> None:
        assert state.valid_from is not None
        rows[(state.valid_from, ts)] = state_row(state, ts)
        live.append((state.valid_from, ts, state))

    for event, position, topic, stored in records:
        ts: datetime = event.timestamp
        if isinstance(event, Project.Registered):
            registered_on = day = event.effective_date
            state = evolve(None, event)
            state.valid_from = day
            history.append((day, event.originator_version, event))
            out.events.append(event_row(event, day, position, topic, stored, project_id))
            add(state, ts)
            continue
        assert registered_on is not None, "an event before the project's registration"
        day = sort_date(event, registered_on)
        out.events.append(event_row(event, day, position, topic, stored, project_id))
        tail_day, tail_ts, tail_state = live[-1]
        if day >= tail_day:
            history.append((day, event.originator_version, event))
            if day == tail_day:
                rows[(tail_day, tail_ts)][3] = ts
                live.pop()
            state = evolve(tail_state, event)
            state.valid_from = day
            add(state, ts)
            continue
        bisect.insort(history, (day, event.originator_version, event), key=lambda e: e[:2])
        first = bisect.bisect_left(live, day, key=lambda row: row[0])
        previous: ProjectState | None = live[first - 1][2] if first else None
        for row_day, row_ts, _ in live[first:]:
            rows[(row_day, row_ts)][3] = ts
        del live[first:]
        current: date | None = None
        state_now = previous
        for row_day, _, past in history[bisect.bisect_left(history, day, key=lambda e: e[0]) :]:
            if current is not None and row_day != current and state_now is not None:
                add(state_now, ts)
            state_now = evolve(state_now, past)
            state_now.valid_from = current = row_day
        assert state_now is not None
        add(state_now, ts)
    if live:
        assert registered_on is not None
        out.project = (live[-1][2].project_id, registered_on, live[-1][0])
    out.states = list(rows.values())
    return out


@contextmanager
def rare_collections(threshold: int = 100_000) -> Iterator[None]:
    """Collect cycles rarely for the duration: a batch keeps some 50,000 young lists alive,
    and the default thresholds would traverse them again and again (a fifth of the CPU)."""
    before = gc.get_threshold()
    gc.set_threshold(threshold, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def uuid_range(k: int, n: int) -> tuple[UUID, UUID | None]:
    """Partition k of n: the project ids in [low, high) (high None: to the end)."""
    span = 1 << 128
    high = None if k == n - 1 else UUID(int=(k + 1) * span // n)
    return UUID(int=k * span // n), high


def project_histories(
    db: Database, mapper: Mapper[UUID], table: str, until: int, part: tuple[int, int]
) -> Iterator[list[tuple[Any, int, str, bytes]]]:
    """Each project's decoded events up to notification `until`, in stream order, one project
    at a time (a server-side cursor over one range of the primary key)."""
    low, high = uuid_range(*part)
    where = sql.SQL("originator_id >= %s") + (
        sql.SQL(" AND originator_id < %s") if high is not None else sql.SQL("")
    )
    query = sql.SQL(
        "SELECT originator_id, originator_version, topic, state, notification_id FROM {tbl} "
        "WHERE {where} AND notification_id <= %s AND topic LIKE %s "
        "ORDER BY originator_id, originator_version"
    ).format(tbl=ident(table), where=where)
    params = [low, *([high] if high is not None else []), until, PROJECT_TOPIC_PREFIX + "%"]
    decode = event_decoder(mapper)
    with db.session() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        with conn.cursor(name="rebuild_stream", binary=True, row_factory=tuple_row) as cur:
            cur.itersize = READ_BATCH
            cur.execute(query, params)
            project: Any = None
            records: list[tuple[Any, int, str, bytes]] = []
            while batch := cur.fetchmany(READ_BATCH):
                for originator_id, version, topic, state, position in batch:
                    if originator_id != project:
                        if records:
                            yield records
                        project, records = originator_id, []
                    records.append(
                        (decode(originator_id, version, topic, state), position, topic, state)
                    )
            if records:
                yield records


def replay_streams(
    db: Database,
    mapper: Mapper[UUID],
    events_table: str,
    tables: Tables,
    until: int,
    part: tuple[int, int] = (0, 1),
    progress: Callable[[int], None] | None = None,
) -> int:
    """Fold partition `part` of the projects up to notification `until` into `tables`
    (fresh, without indexes), in one transaction; return how many events.

    A writer thread copies each batch while this one reads and folds the next (the GIL is
    released while the server takes the rows in), with one batch at most in flight."""
    done = 0
    in_flight: Future[int] | None = None

    def landed() -> None:
        nonlocal done, in_flight
        if in_flight is not None:
            count = in_flight.result()
            done += count
            in_flight = None
            if progress is not None and count:
                progress(count)

    with rare_collections(), db.transaction() as tx, ThreadPoolExecutor(1) as writer:
        batch = Batch()
        for records in project_histories(db, mapper, events_table, until, part):
            batch.add(fold_history(records), len(records))
            if batch.count >= FLUSH_EVENTS:
                landed()
                in_flight = writer.submit(batch.copy, tx, tables)
                batch = Batch()
        landed()
        in_flight = writer.submit(batch.copy, tx, tables)
        landed()
    return done


@dataclass
class Batch:
    """Rows of several projects waiting for their COPY."""

    states: list[list[Any]] = field(default_factory=list)
    events: list[list[Any]] = field(default_factory=list)
    projects: list[tuple[str, date, date]] = field(default_factory=list)
    count: int = 0

    def add(self, rows: ProjectRows, events: int) -> None:
        self.states += rows.states
        self.events += rows.events
        if rows.project is not None:
            self.projects.append(rows.project)
        self.count += events

    def copy(self, tx: Tx, tables: Tables) -> int:
        """COPY the rows in binary; return how many events they came from."""
        tx.copy_rows(tables.states, STATE_COLUMNS, self.states, STATE_TYPES)
        tx.copy_rows(tables.events, EVENT_COLUMNS, self.events, EVENT_TYPES)
        tx.copy_rows(tables.projects, PROJECT_COLUMNS, self.projects, PROJECT_TYPES)
        return self.count
