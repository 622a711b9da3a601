"""Event recorders that can commit one more row with the events, in the same transaction.

`Portfolio.save(..., with_events=write)` reaches the recorder's `insert_events` as a keyword
argument (the library passes save()'s keyword arguments down to its recorder, as it does for
a ProcessingEvent's tracking record). `write(notification_ids)` returns one parameterised
statement that must change exactly one row; it runs on the cursor that inserted the events,
before the commit, so the events and that row are committed together or not at all. A
statement that changes no row (a claim lost to another request) rolls the events back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, Notification, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import retry
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from domain.application import WITH_EVENTS
from projections.db import Query, Tx

Write = Callable[[Sequence[int]], tuple[Query, Sequence[Any]]]


class WriteRefused(Exception):
    """The row to commit with the events was not there to change: nothing was recorded."""


def _run(tx: Tx, write: Write, notification_ids: Sequence[int]) -> None:
    query, params = write(notification_ids)
    if tx.execute(query, params) != 1:
        raise WriteRefused("the row to record with the events is gone; nothing was recorded")


class SQLiteRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, plus the optional row written in the events' transaction."""

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        write: Write | None = kwargs.get(WITH_EVENTS)
        if write is not None:
            _run(Tx("sqlite", c.sqlite_cursor), write, list(ids or ()))
        return ids


class PostgresRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, in one round trip, plus the optional row written in
    the same transaction.

    The library takes an EXCLUSIVE lock on the events table for each insert, so that
    transactions commit in the order of their notification ids: a reader tailing the log
    never passes a gap that an earlier id fills later (the catch-up relies on it). The lock
    is kept, but without a row to write the whole transaction is one simple-query message
    (BEGIN; SET LOCAL lock_timeout; LOCK TABLE; INSERT ... RETURNING; COMMIT, the values
    bound by psycopg's client-side cursor): the lock is held for the server's work only,
    never across a network round trip, and it costs a third of the CPU of the library's
    pipeline. No NOTIFY is sent: nothing LISTENs (the catch-up is triggered by the web
    process, `after_commit`), and a NOTIFY serialises every committing transaction of the
    database on PostgreSQL's notification queue lock.

    With a row to write, the insert runs statement by statement (no pipeline: in a pipeline
    an error raised after the events' INSERT is caught and re-raised only after COMMIT).
    """

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self._one_trip: dict[int, sql.Composed] = {}
        # Statements rendered once: psycopg renders a composed statement on every execute
        # (identifiers quoted, parts joined), and caches the parsing of text only.
        self._rendered: dict[object, bytes] = {}

    def _render(self, key: object, conn: Any, build: Callable[[], sql.Composable]) -> bytes:
        text = self._rendered.get(key)
        if text is None:
            text = self._rendered.setdefault(key, build().as_bytes(conn))
        return text

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """The library's select_events (the same SQL), the statement rendered once."""
        if lte is not None or desc or limit is not None:
            return list(
                super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
            )
        params: list[Any] = [originator_id] if gt is None else [originator_id, gt]

        def build() -> sql.Composable:
            after = sql.SQL("" if gt is None else " AND originator_version > %s")
            return (
                self.select_events_statement + after + sql.SQL(" ORDER BY originator_version ASC")
            )

        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._render(("events", gt is None), conn, build), params, prepare=True)
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_streams(self, wanted: Mapping[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        """Several streams, each up to its version (inclusive), in one statement: what
        `select_events(originator_id, lte=version)` gives for each."""
        found: dict[UUID, list[StoredEvent]] = {oid: [] for oid in wanted}
        if not wanted:
            return found

        def build() -> sql.Composable:
            return sql.SQL(
                "SELECT e.originator_id, e.originator_version, e.topic, e.state"
                " FROM {schema}.{table} e"
                " JOIN unnest(%s::uuid[], %s::bigint[]) AS w (id, lte)"
                " ON e.originator_id = w.id AND e.originator_version <= w.lte"
                " ORDER BY e.originator_id, e.originator_version"
            ).format(
                schema=sql.Identifier(self.datastore.schema),
                table=sql.Identifier(self.events_table_name),
            )

        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                self._render(("streams",), conn, build), [list(wanted), list(wanted.values())]
            )
            for row in curs.fetchall():
                found[row["originator_id"]].append(
                    StoredEvent(
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                )
        return found

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The library's select_notifications (the same SQL), the statement rendered once."""
        if start is None or topics:
            return super().select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
        params = [start, limit] if stop is None else [start, stop, limit]

        def build() -> sql.Composable:
            return sql.SQL(
                "SELECT * FROM {}.{} WHERE notification_id{}%s{} ORDER BY notification_id LIMIT %s"
            ).format(
                sql.Identifier(self.datastore.schema),
                sql.Identifier(self.events_table_name),
                sql.SQL(">=" if inclusive_of_start else ">"),
                sql.SQL("" if stop is None else " AND notification_id <= %s"),
            )

        key = ("notifications", inclusive_of_start, stop is None)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._render(key, conn, build), params, prepare=True)
            return [
                Notification(
                    id=row["notification_id"],
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        write: Write | None = kwargs.get(WITH_EVENTS)
        if not stored_events:
            return super().insert_events(stored_events, **kwargs)
        if write is None:
            return self._insert_in_one_trip(stored_events)
        return self._insert_with(stored_events, write, **kwargs)

    def _notify_channel(self, curs: Any) -> None:
        """No NOTIFY: no process LISTENs to the events table (see the class)."""

    def _one_trip_statement(self, count: int) -> sql.Composed:
        statement = self._one_trip.get(count)
        if statement is None:
            table = sql.SQL("{}.{}").format(
                sql.Identifier(self.datastore.schema), sql.Identifier(self.events_table_name)
            )
            values = sql.SQL(", ").join([sql.SQL("(%s, %s, %s, %s)")] * count)
            statement = sql.SQL(
                "BEGIN; SET LOCAL lock_timeout = '{timeout}s';"
                " LOCK TABLE {table} IN EXCLUSIVE MODE;"
                " INSERT INTO {table} (originator_id, originator_version, topic, state)"
                " VALUES {values} RETURNING notification_id; COMMIT"
            ).format(
                timeout=sql.Literal(int(self.datastore.lock_timeout)), table=table, values=values
            )
            self._one_trip[count] = statement
        return statement

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_in_one_trip(self, stored_events: Sequence[StoredEvent]) -> Sequence[int]:
        params: list[Any] = []
        for e in stored_events:
            params += (e.originator_id, e.originator_version, e.topic, e.state)
        count = len(stored_events)
        with self.datastore.get_connection() as conn:
            assert conn.autocommit  # the library's connections: BEGIN and COMMIT are ours
            statement = self._render(
                ("insert", count), conn, lambda: self._one_trip_statement(count)
            )
            curs = psycopg.ClientCursor(conn, row_factory=tuple_row)
            try:
                curs.execute(statement, params)
                ids: list[int] = []
                while True:
                    if curs.description is not None:
                        ids = [int(row[0]) for row in curs.fetchall()]
                    if not curs.nextset():
                        break
            except psycopg.Error:
                # A refused INSERT (a version recorded first) leaves the transaction failed.
                if conn.info.transaction_status in (
                    TransactionStatus.INTRANS,
                    TransactionStatus.INERROR,
                ):
                    conn.execute("ROLLBACK")
                raise
            finally:
                curs.close()
        if len(ids) != len(stored_events):
            raise OperationalError(f"got {len(ids)} notification ids for {len(stored_events)}")
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_with(
        self, stored_events: Sequence[StoredEvent], write: Write, **kwargs: Any
    ) -> Sequence[int]:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            self._insert_stored_events(curs, stored_events, **kwargs)
            ids = list(self._fetch_ids_after_insert_events(curs, stored_events, **kwargs) or ())
            _run(Tx("postgres", curs), write, ids)
        return ids
