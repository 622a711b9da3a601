"""Event recorders that can commit one more row with the events, in the same transaction.

`Portfolio.save(..., with_events=write)` reaches the recorder's `insert_events` as a keyword
argument (the library passes save()'s keyword arguments down to its recorder, as it does for
a ProcessingEvent's tracking record). `write(notification_ids)` returns one parameterised
statement that must change exactly one row; it runs on the cursor that inserted the events,
before the commit, so the events and that row are committed together or not at all. A
statement that changes no row (a claim lost to another request) rolls the events back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import retry

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
    """The library's PostgreSQL recorder, plus the optional row written in the same transaction.

    With a row to write, the insert runs without the library's pipeline: in a pipeline an
    error raised after the events' INSERT is caught and re-raised only after COMMIT.
    """

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        write: Write | None = kwargs.get(WITH_EVENTS)
        if write is None or not stored_events:
            return super().insert_events(stored_events, **kwargs)
        return self._insert_with(stored_events, write, **kwargs)

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
