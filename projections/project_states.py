"""The project-states projector: bitemporal rows, one fold step per event.

A row says: "as known from `recorded_from` until `recorded_to`, the project's state from
`valid_from` until the next live row's `valid_from` was this". An event effective on or
after the project's latest row adds one row (and retires a same-day row); a backdated
event retires the rows it changes and writes them anew, refolded from the events, so
that what was known before stays queryable with `known_at`.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification, StoredEvent
from psycopg import sql

from domain.ministry import Ministries
from domain.project import Project
from domain.project_facts import FACTS, Fact
from projections.db import Row, Tx, as_date, as_money, as_ts
from projections.figure_tables import derive_from_states, derive_in_sql, refresh
from projections.schema import EVENT_COLUMNS, STATE_COLUMNS, Tables, state_columns
from projections.state import ProjectState, evolve, sort_date

PROJECT_TOPIC_PREFIX = "domain.project:Project."
MINISTRIES_TOPIC_PREFIX = "domain.ministry:Ministries."
_COLS = sql.SQL(", ").join(sql.Identifier(c) for c in STATE_COLUMNS)


class StateRows:
    """How states become rows of a states table and back, derived from the declared facts."""

    def __init__(self, facts: Sequence[Fact]) -> None:
        self.facts = tuple(facts)
        self.columns = state_columns(self.facts)
        kept = [f.name for f in self.facts if f.column is not None]
        self.extra = tuple(f.name for f in self.facts if f.column is None)
        self._kept = operator.attrgetter(*kept)
        self._extra = _tuple_getter(self.extra)
        self._cache: dict[tuple[Any, ...], str] = {}

    def row(self, state: ProjectState, recorded_from: datetime) -> list[Any]:
        """The columns of a live row for `state`, in `columns` order."""
        key = tuple([tuple(v) if isinstance(v, list) else v for v in self._extra(state)])
        extra = self._cache.get(key)
        if extra is None:
            if len(self._cache) > 50_000:
                self._cache.clear()
            values = {name: getattr(state, name) for name in self.extra}
            extra = self._cache[key] = json.dumps(values, ensure_ascii=False)
        return [
            state.project_id,
            state.valid_from,
            recorded_from,
            None,
            state.version,
            *self._kept(state),
            extra,
        ]

    def state(self, row: Row) -> ProjectState:
        """Rebuild a ProjectState from a row of either dialect."""
        state = ProjectState(row["project_id"])
        extra = json.loads(row.get("extra") or "{}")
        state.version = int(row["version"])
        state.valid_from = as_date(row["valid_from"])
        for fact in self.facts:
            raw = extra.get(fact.name) if fact.column is None else row[fact.column]
            setattr(state, fact.name, _READ[fact.kind](raw, fact.optional))
        return state


def _tuple_getter(names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The attributes `names` of an object, as a tuple (whatever their number)."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    return lambda obj: tuple(getattr(obj, name) for name in names)


def _read_money(raw: Any, optional: bool) -> Decimal | None:
    money = as_money(raw)
    return money if money is not None or optional else Decimal(0)


_READ: dict[str, Callable[[Any, bool], Any]] = {
    "text": lambda raw, optional: raw,
    "bool": lambda raw, optional: bool(raw),
    "date": lambda raw, optional: as_date(raw),
    "money": _read_money,
    "list": lambda raw, optional: list(raw or []),
}
STATE_ROWS = StateRows(FACTS)


def state_row(state: ProjectState, recorded_from: datetime) -> list[Any]:
    """The columns of a live row for `state`, in STATE_COLUMNS order."""
    return STATE_ROWS.row(state, recorded_from)


def state_from_row(row: Row) -> ProjectState:
    """Rebuild a ProjectState from a row of either dialect."""
    state: ProjectState = STATE_ROWS.state(row)
    if row.get("ministry_stable"):
        state.stable_ministry_code = row["ministry_stable"]
        state.ministry_reference_name = row["ministry_reference_name"]
    return state


def apply_ministry_event(tx: Tx, tables: Tables, event: Any) -> None:
    """Keep the ministry codes table (code -> stable code, current name) of the reference."""
    tbl = tables.ministry_codes
    upsert = sql.SQL(
        "INSERT INTO {tbl} (code, stable_code, name) VALUES (%s, %s, %s) ON CONFLICT (code) "
        "DO UPDATE SET stable_code = excluded.stable_code, name = excluded.name"
    ).format(tbl=tbl)
    if isinstance(event, Ministries.Registered):
        tx.execute(upsert, (event.code, event.code, event.name))
    elif isinstance(event, Ministries.AliasAdded):
        name = tx.scalar(
            sql.SQL("SELECT name FROM {tbl} WHERE code = %s").format(tbl=tbl), (event.code,)
        )
        tx.execute(upsert, (event.alias, event.code, name or event.code))
    elif isinstance(event, Ministries.Renamed):
        tx.execute(
            sql.SQL("UPDATE {tbl} SET name = %s WHERE stable_code = %s").format(tbl=tbl),
            (event.name, event.code),
        )


def event_row(
    event: Any, day: date, position: int, topic: str, state: bytes, project_id: str | None = None
) -> list[Any]:
    """The columns of an events-table row, in EVENT_COLUMNS order (`project_id`: the
    event's originator id as text, when the caller has it already)."""
    return [
        project_id or str(event.originator_id),
        event.originator_version,
        position,
        day,
        event.effective_date,
        event.timestamp,
        type(event).__name__,
        event.actor,
        event.source,
        event.narrative,
        event.correction,
        topic,
        state,
    ]


def partition_of(project_id: str, count: int) -> int:
    """A stable partition of a project id, for parallel rebuilds."""
    return int(project_id.replace("-", "")[:8], 16) % count


class _Statements:
    """The projector's per-batch statements for one set of tables, rendered to text once
    (psycopg renders a composed statement on every execute). The arrays go in binary
    (`%b`): psycopg's text array dumper quotes and escapes element by element in Python."""

    def __init__(self, tables: Tables) -> None:
        states, projects = tables.states, tables.projects
        self.retire_one = sql.SQL(
            "UPDATE {tbl} SET recorded_to = %s WHERE project_id = %s AND valid_from = %s "
            "AND recorded_from = %s AND recorded_to IS NULL"
        ).format(tbl=states)
        self.retire_all = (
            sql.SQL(
                "UPDATE {tbl} s SET recorded_to = r.ts FROM unnest(%b::timestamptz[], "
                "%b::text[], %b::date[], %b::timestamptz[]) AS r (ts, pid, valid_from, "
                "recorded_from) WHERE s.project_id = r.pid AND s.valid_from = r.valid_from "
                "AND s.recorded_from = r.recorded_from AND s.recorded_to IS NULL"
            )
            .format(tbl=states)
            .as_string()
        )
        upsert = (
            "INSERT INTO {tbl} (project_id, registered_on, tail_valid_from) {rows} "
            "ON CONFLICT (project_id) DO UPDATE SET tail_valid_from = excluded.tail_valid_from"
        )
        self.upsert_project = sql.SQL(upsert).format(
            tbl=projects, rows=sql.SQL("VALUES (%s, %s, %s)")
        )
        self.upsert_projects = (
            sql.SQL(upsert)
            .format(
                tbl=projects,
                rows=sql.SQL("SELECT * FROM unnest(%b::text[], %b::date[], %b::date[])"),
            )
            .as_string()
        )


@functools.lru_cache(maxsize=64)
def _statements(tables: Tables) -> _Statements:
    return _Statements(tables)


class Tail:
    """A project's latest live row, kept in memory while a consumer holds the lock."""

    __slots__ = ("registered_on", "state", "recorded_from")

    def __init__(self, registered_on: date, state: ProjectState, recorded_from: datetime) -> None:
        self.registered_on = registered_on
        self.state = state
        self.recorded_from = recorded_from


class ProjectStatesProjector:
    """Applies notifications to one set of tables; one instance per catch-up run."""

    def __init__(
        self, mapper: Mapper[UUID], tables: Tables, partition: tuple[int, int] | None = None
    ) -> None:
        self.mapper = mapper
        self.tables = tables
        self.partition = partition
        self.tails: dict[str, Tail] = {}
        self._rows: dict[tuple[str, date, datetime], list[Any]] = {}
        self._events: list[list[Any]] = []
        self._retire: list[tuple[datetime, str, date, datetime]] = []
        self._touched: set[str] = set()
        self._row_states: dict[tuple[str, date, datetime], ProjectState] = {}
        self._pending_rows: dict[str, list[tuple[str, date, datetime]]] = {}
        self._pending_events: dict[str, list[tuple[date, int, Any]]] = {}

    def process(self, tx: Tx, notifications: Sequence[Notification]) -> int:
        """Apply a batch of notifications in order; return how many were project events."""
        mine = [n for n in notifications if n.topic.startswith(PROJECT_TOPIC_PREFIX)]
        reference = [n for n in notifications if n.topic.startswith(MINISTRIES_TOPIC_PREFIX)]
        if self.partition is not None:
            k, count = self.partition
            mine = [n for n in mine if partition_of(str(n.originator_id), count) == k]
            reference = [n for n in reference if partition_of(str(n.originator_id), count) == k]
        for notification in reference:
            apply_ministry_event(tx, self.tables, self.mapper.to_domain_event(notification))
        self._prefetch(tx, {str(n.originator_id) for n in mine} - set(self.tails))
        for notification in mine:
            self._apply(tx, notification)
        self.flush(tx)
        return len(mine)

    # -- one event ---------------------------------------------------------------------------
    def _apply(self, tx: Tx, n: Notification) -> None:
        event: Any = self.mapper.to_domain_event(n)
        pid = str(event.originator_id)
        ts: datetime = event.timestamp
        if isinstance(event, Project.Registered):
            state = evolve(None, event)
            state.valid_from = event.effective_date
            self._add_event_row(n, event, pid, event.effective_date)
            self._add_row(state, ts)
            self.tails[pid] = Tail(event.effective_date, state, ts)
            self._touched.add(pid)
            return
        tail = self.tails[pid]
        day = sort_date(event, tail.registered_on)
        self._add_event_row(n, event, pid, day)
        assert tail.state.valid_from is not None
        if day >= tail.state.valid_from:
            if day == tail.state.valid_from:
                self._retire_row(pid, day, tail.recorded_from, ts)
            state = evolve(tail.state, event)
            state.valid_from = day
            self._add_row(state, ts)
            tail.state, tail.recorded_from = state, ts
        else:
            self._refold(tx, pid, day, ts, tail)
        self._touched.add(pid)

    def _refold(self, tx: Tx, pid: str, day: date, ts: datetime, tail: Tail) -> None:
        """A backdated event: retire the live rows from `day` on and write them anew.

        What is already in the tables and what is still buffered are merged, so that a
        backdated event costs a few indexed statements, not a flush of the batch.
        """
        t = self.tables
        if self._retire:  # pending same-day retirements must land before the bulk one
            self._flush_retirements(tx)
        prev_row = tx.fetchone(
            sql.SQL(
                "SELECT {cols} FROM {tbl} WHERE project_id = %s AND recorded_to IS NULL "
                "AND valid_from < %s ORDER BY valid_from DESC LIMIT 1"
            ).format(cols=_COLS, tbl=t.states),
            (pid, day),
        )
        stored = tx.fetch(
            sql.SQL(
                "SELECT version, sort_date, topic, state FROM {tbl} WHERE project_id = %s "
                "AND sort_date >= %s ORDER BY sort_date, version"
            ).format(tbl=t.events),
            (pid, day),
        )
        tx.execute(
            sql.SQL(
                "UPDATE {tbl} SET recorded_to = %s WHERE project_id = %s "
                "AND recorded_to IS NULL AND valid_from >= %s"
            ).format(tbl=t.states),
            (ts, pid, day),
        )
        state = state_from_row(prev_row) if prev_row else None
        for key in self._pending_rows.get(pid, []):
            row = self._rows[key]
            if row[3] is not None:
                continue
            if key[1] >= day:
                row[3] = ts
            elif state is None or (state.valid_from is not None and key[1] > state.valid_from):
                state = self._row_states[key]
        events: list[tuple[date, int, Any]] = []
        for r in stored:
            stored_event = StoredEvent(UUID(pid), int(r["version"]), r["topic"], bytes(r["state"]))
            row_day = as_date(r["sort_date"])
            assert row_day is not None
            events.append((row_day, int(r["version"]), self.mapper.to_domain_event(stored_event)))
        events += [e for e in self._pending_events.get(pid, []) if e[0] >= day]
        events.sort(key=lambda e: (e[0], e[1]))
        current: date | None = None
        for row_day, _, event in events:
            if current is not None and row_day != current and state is not None:
                self._add_row(state, ts)
            state = evolve(state, event)
            state.valid_from = current = row_day
        assert state is not None
        self._add_row(state, ts)
        tail.state, tail.recorded_from = state, ts

    # -- buffers -----------------------------------------------------------------------------
    def _add_row(self, state: ProjectState, ts: datetime) -> None:
        assert state.valid_from is not None
        key = (state.project_id, state.valid_from, ts)
        if key not in self._rows:
            self._pending_rows.setdefault(state.project_id, []).append(key)
        self._rows[key] = state_row(state, ts)
        self._row_states[key] = state

    def _retire_row(
        self, pid: str, valid_from: date, recorded_from: datetime, ts: datetime
    ) -> None:
        pending = self._rows.get((pid, valid_from, recorded_from))
        if pending is not None:
            pending[3] = ts
        else:
            self._retire.append((ts, pid, valid_from, recorded_from))

    def _add_event_row(self, n: Notification, event: Any, pid: str, day: date) -> None:
        self._pending_events.setdefault(pid, []).append((day, event.originator_version, event))
        self._events.append(event_row(event, day, n.id, n.topic, n.state))

    def _flush_retirements(self, tx: Tx) -> None:
        if not self._retire:
            return
        if tx.dialect == "postgres":
            # one statement for the batch, not one per retired row (no row is retired twice:
            # a retired row's successor is buffered, and it is retired in the buffer)
            tx.execute(
                _statements(self.tables).retire_all,
                [list(c) for c in zip(*self._retire, strict=True)],
            )
        else:
            tx.executemany(_statements(self.tables).retire_one, self._retire)
        self._retire = []

    def flush(self, tx: Tx) -> None:
        """Write what the buffers hold, in this transaction."""
        t = self.tables
        self._flush_retirements(tx)
        tx.copy_rows(t.states, STATE_COLUMNS, list(self._rows.values()))
        tx.copy_rows(t.events, EVENT_COLUMNS, self._events)
        touched = [
            (pid, self.tails[pid].registered_on, self.tails[pid].state.valid_from)
            for pid in sorted(self._touched)
        ]
        if touched and tx.dialect == "postgres":  # one statement; the ids are distinct
            tx.execute(
                _statements(t).upsert_projects, [list(c) for c in zip(*touched, strict=True)]
            )
        else:
            tx.executemany(_statements(t).upsert_project, touched)
        refresh(tx, t, self._new_live_states())
        self._rows, self._events, self._retire, self._touched = {}, [], [], set()
        self._row_states, self._pending_rows, self._pending_events = {}, {}, {}

    def _new_live_states(self) -> dict[str, list[ProjectState]]:
        """Per project touched, its buffered live states by valid_from: every live row from
        the first one's valid_from on (the rows they replaced were retired)."""
        found: dict[str, list[ProjectState]] = {}
        for pid in self._touched:
            keys = [k for k in self._pending_rows.get(pid, []) if self._rows[k][3] is None]
            if keys:
                found[pid] = [self._row_states[k] for k in sorted(keys, key=lambda k: k[1])]
        return found

    def _prefetch(self, tx: Tx, pids: set[str]) -> None:
        """Load the tails of projects not yet in memory, a chunk at a time."""
        ordered = sorted(pids)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            marks = sql.SQL(", ").join(sql.Placeholder() for _ in chunk)
            rows = tx.fetch(
                sql.SQL(
                    "SELECT s.*, p.registered_on AS p_registered_on FROM {p} p JOIN {s} s "
                    "ON s.project_id = p.project_id AND s.valid_from = p.tail_valid_from "
                    "AND s.recorded_to IS NULL WHERE p.project_id IN ({marks})"
                ).format(p=self.tables.projects, s=self.tables.states, marks=marks),
                chunk,
            )
            for row in rows:
                state = state_from_row(row)
                registered = as_date(row["p_registered_on"])
                recorded = as_ts(row["recorded_from"])
                assert registered is not None and recorded is not None
                self.tails[row["project_id"]] = Tail(registered, state, recorded)


def derive_figure_tables(tx: Tx, tables: Tables) -> None:
    """Fill the (empty) figure tables of `tables` from its live states rows: in SQL on
    PostgreSQL (a rebuild, after its bulk load), through the projector's own `refresh` on
    SQLite (tables made before the figure tables were)."""
    if tx.dialect == "postgres":
        derive_in_sql(tx, tables)
        return
    rows = tx.fetch(
        sql.SQL(
            "SELECT * FROM {} WHERE recorded_to IS NULL ORDER BY project_id, valid_from"
        ).format(tables.states)
    )
    live: dict[str, list[ProjectState]] = {}
    for row in rows:
        live.setdefault(row["project_id"], []).append(state_from_row(row))
    derive_from_states(tx, tables, live)
