"""A thin database handle over SQLite (embedded) or PostgreSQL (psycopg 3 pool).

Queries are written once with `%s` placeholders and identifiers composed through
`psycopg.sql`; for SQLite they are rendered to text and the placeholders become `?`.
"""

from __future__ import annotations

import decimal
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, cast
from uuid import UUID

import psycopg
from psycopg import pq, sql
from psycopg.abc import AdaptContext
from psycopg.adapt import Dumper, PyFormat
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool

Query = str | sql.Composable
Row = dict[str, Any]
Dialect = Literal["sqlite", "postgres"]
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"
NUMERIC_OID = 1700
_BYTES_DUMPER = psycopg.adapters.get_dumper(bytes, PyFormat.BINARY)


class SharedNumericDumper(Dumper):
    """psycopg's binary numeric dumper, remembering its last few thousand objects: the
    rows of a bulk copy share the same Decimal objects (a project's costs change seldom,
    its state rows are copies), and dumping a Decimal is a third of a state row's COPY."""

    format = pq.Format.BINARY
    oid = NUMERIC_OID

    def __init__(self, cls: type, context: AdaptContext | None = None) -> None:
        super().__init__(cls, context)
        inner = psycopg.adapters.get_dumper_by_oid(NUMERIC_OID, pq.Format.BINARY)
        self._inner = inner(cls, context)
        self._seen: dict[int, tuple[Any, Any]] = {}  # id -> (the object, kept alive; bytes)

    def dump(self, obj: Any) -> Any:
        seen = self._seen.get(id(obj))
        if seen is not None and seen[0] is obj:
            return seen[1]
        if len(self._seen) >= 4096:
            self._seen.clear()
        data = self._inner.dump(obj)
        self._seen[id(obj)] = (obj, data)
        return data


_COPY_TEXT: dict[tuple[str, tuple[str, ...], bool], str] = {}


def _copy_statement(table: sql.Identifier, columns: tuple[str, ...], binary: bool) -> str:
    """`COPY table (columns) FROM STDIN`, rendered to text once per (table, columns, format):
    composing it and rendering it on every execute cost more than a one-row COPY's data."""
    key = (table.as_string(), columns, binary)
    text = _COPY_TEXT.get(key)
    if text is None:
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        suffix = sql.SQL(" (FORMAT BINARY)" if binary else "")
        text = sql.SQL("COPY {} ({}) FROM STDIN{}").format(table, cols, suffix).as_string()
        if len(_COPY_TEXT) < 1024:
            _COPY_TEXT[key] = text
    return text


FEW_ROWS = 4  # copy_rows: up to this many rows in one INSERT, not a COPY
_INSERT_TEXT: dict[tuple[str, tuple[str, ...], int], str] = {}


def _insert_statement(table: sql.Identifier, columns: tuple[str, ...], count: int) -> str:
    """`INSERT INTO table (columns) VALUES` `count` rows, rendered to text once per shape."""
    key = (table.as_string(), columns, count)
    text = _INSERT_TEXT.get(key)
    if text is None:
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() for _ in columns))
        values = sql.SQL(", ").join(row for _ in range(count))
        text = sql.SQL("INSERT INTO {} ({}) VALUES {}").format(table, cols, values).as_string()
        if len(_INSERT_TEXT) < 1024:
            _INSERT_TEXT[key] = text
    return text


class Tx:
    """One open transaction; every statement is parameterised."""

    def __init__(self, dialect: Dialect, conn: Any) -> None:
        self.dialect = dialect
        self._conn = conn

    def _text(self, query: Query) -> Any:
        if self.dialect == "postgres":
            return query
        text = query.as_string() if isinstance(query, sql.Composable) else query
        return text.replace("%s", "?")

    def _params(self, params: Sequence[Any]) -> tuple[Any, ...]:
        if self.dialect == "postgres":
            return tuple(params)
        return tuple(to_sqlite(p) for p in params)

    def execute(self, query: Query, params: Sequence[Any] = ()) -> int:
        """Run a statement, return the number of rows it changed."""
        cur = self._conn.execute(self._text(query), self._params(params))
        return int(cur.rowcount or 0)

    def executemany(self, query: Query, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per parameter row."""
        if not rows:
            return
        if self.dialect == "postgres":
            with self._conn.cursor() as cur:
                cur.executemany(query, rows)
        else:
            self._conn.executemany(self._text(query), [self._params(r) for r in rows])

    def copy_rows(
        self,
        table: sql.Identifier,
        columns: Sequence[str],
        rows: Sequence[Any],
        types: Sequence[str] | None = None,
    ) -> None:
        """Bulk-insert rows: COPY on PostgreSQL (binary when the columns' `types` are given;
        without them, up to FEW_ROWS rows in one INSERT), executemany on SQLite."""
        if not rows:
            return
        if self.dialect == "postgres" and not types and len(rows) <= FEW_ROWS:
            # a COPY costs its setup whatever the rows: a few go in one INSERT (half the CPU)
            self.execute(
                _insert_statement(table, tuple(columns), len(rows)), [v for r in rows for v in r]
            )
            return
        if self.dialect == "postgres":
            with self._conn.cursor() as cur:
                if types and "numeric" in types:
                    cur.adapters.register_dumper(Decimal, SharedNumericDumper)
                if types and "bytea" in types:  # the C dumper, not dbapi20's subclass of it
                    cur.adapters.register_dumper(bytes, _BYTES_DUMPER)
                with cur.copy(_copy_statement(table, tuple(columns), bool(types))) as copy:
                    if types:
                        copy.set_types(list(types))
                    for row in rows:
                        copy.write_row(row)
            return
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        marks = sql.SQL(", ").join(sql.Placeholder() for _ in columns)
        stmt = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(table, cols, marks)
        self.executemany(stmt, rows)

    def copy_text(
        self, table: sql.Identifier, columns: Sequence[str], lines: Sequence[str]
    ) -> None:
        """PostgreSQL only: COPY rows already in COPY's text format (one line per row, its
        fields escaped and tab-separated), sent in one piece."""
        if self.dialect != "postgres":
            raise NotImplementedError("copy_text is PostgreSQL's COPY")
        if not lines:
            return
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(table, cols)
        with self._conn.cursor() as cur, cur.copy(stmt) as copy:
            copy.write("\n".join(lines) + "\n")

    def copy_text_stream(self, table: sql.Identifier, columns: Sequence[str]) -> CopyStream:
        """PostgreSQL only: a COPY of text lines kept open while the caller writes them in
        pieces (the server inserts each piece as it arrives); the connection takes no other
        statement until the stream is closed."""
        if self.dialect != "postgres":
            raise NotImplementedError("copy_text_stream is PostgreSQL's COPY")
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(table, cols)
        return CopyStream(self._conn.cursor(), stmt)

    def fetch(self, query: Query, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query, return its rows as dicts."""
        cur = self._conn.execute(self._text(query), self._params(params))
        rows = cur.fetchall()
        if self.dialect == "postgres":
            return list(rows)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in rows]

    def fetch_tuples(self, query: Query, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query, return its rows as tuples, in the order of its columns (for many rows
        of few columns, where a dict per row costs more than the query)."""
        if self.dialect == "postgres":
            with self._conn.cursor(row_factory=tuple_row) as cur:
                cur.execute(query, self._params(params))
                return list(cur.fetchall())
        return list(self._conn.execute(self._text(query), self._params(params)).fetchall())

    def fetchone(self, query: Query, params: Sequence[Any] = ()) -> Row | None:
        rows = self.fetch(query, params)
        return rows[0] if rows else None

    def scalar(self, query: Query, params: Sequence[Any] = ()) -> Any:
        row = self.fetchone(query, params)
        return None if row is None else next(iter(row.values()))


# A pooled connection handed back less than this long ago is lent again without the
# pool's check (an empty query: one more round trip per transaction). A connection lost in
# that window fails its one transaction, as it could fail just after any check, and the
# pool replaces it.
CHECK_IDLE_AFTER_S = 1.0


def _stamp_returned(conn: psycopg.Connection[Any]) -> None:
    """The pool's reset callback: when the connection came back (idle, healthy)."""
    conn._panorama_returned_at = time.monotonic()  # type: ignore[attr-defined]


def _check_if_idle_long(conn: psycopg.Connection[Any]) -> None:
    """The pool's check, only for a connection idle for CHECK_IDLE_AFTER_S or more."""
    returned: float | None = getattr(conn, "_panorama_returned_at", None)
    if returned is not None and time.monotonic() - returned < CHECK_IDLE_AFTER_S:
        return
    ConnectionPool.check_connection(conn)


class Database:
    """Connections to the database that holds the events and the read models."""

    def __init__(
        self,
        *,
        dialect: Dialect,
        sqlite_path: Path | None = None,
        conninfo: str | None = None,
        schema: str = "public",
        pool_size: int = 5,
    ) -> None:
        self.dialect: Dialect = dialect
        self.sqlite_path = sqlite_path
        self.conninfo = conninfo
        self.schema = schema
        self.pool_size = pool_size
        self._pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._local = threading.local()
        # this process's one long-lived autocommit connection (see `quick`), and its owner
        self._quick: psycopg.Connection[Any] | None = None
        self._quick_pid = 0
        self._quick_lock = threading.Lock()

    # -- connections -------------------------------------------------------------------------
    def _pg_pool(self) -> ConnectionPool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.conninfo or "",
                    min_size=1,
                    max_size=self.pool_size,
                    kwargs={"row_factory": dict_row, "autocommit": False},
                    configure=self._configure_pg,
                    reset=_stamp_returned,
                    open=True,
                    check=_check_if_idle_long,
                )
            return self._pool

    def _configure_pg(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        conn.commit()

    def _sqlite(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self.sqlite_path is not None
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.sqlite_path), timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            register_decimal_functions(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Tx]:
        """A transaction: committed when the block ends, rolled back on error."""
        if self.dialect == "postgres":
            with self._pg_pool().connection() as pg, pg.transaction():
                tx = Tx("postgres", pg)
                if not write:
                    tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield tx
            return
        lite = self._sqlite()
        lite.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield Tx("sqlite", lite)
        except BaseException:
            lite.execute("ROLLBACK")
            raise
        else:
            lite.execute("COMMIT")

    @contextmanager
    def session(self) -> Iterator[psycopg.Connection[Any]]:
        """A dedicated PostgreSQL connection (for session-level advisory locks)."""
        conn = psycopg.connect(self.conninfo or "", row_factory=dict_row, autocommit=True)
        try:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            yield conn
        finally:
            conn.close()

    def quick(self, query: Query, params: Sequence[Any] = ()) -> Row | None:
        """One statement outside any transaction, its first row: on PostgreSQL on this
        process's one long-lived autocommit connection (advisory locks, one-row reads),
        one statement at a time, reconnecting once if the connection was lost."""
        rows = self.quick_all(query, params)
        return rows[0] if rows else None

    def quick_all(self, query: Query, params: Sequence[Any] = ()) -> list[Row]:
        """`quick`, every row."""
        if self.dialect != "postgres":
            with self.transaction(write=False) as tx:
                return tx.fetch(query, params)
        with self._quick_lock:
            for attempt in (1, 2):
                conn = self._quick_connection()
                try:
                    cur = conn.execute(cast(Any, query), params)
                    rows: list[Row] = cur.fetchall() if cur.description else []
                    return rows
                except psycopg.OperationalError:
                    self._quick = None
                    if attempt == 2 or not conn.closed:
                        raise
        raise AssertionError("unreachable")

    def _quick_connection(self) -> psycopg.Connection[Any]:
        if self._quick is None or self._quick_pid != os.getpid() or self._quick.closed:
            # A connection inherited through fork() belongs to the parent: never reuse it.
            conn = psycopg.connect(self.conninfo or "", row_factory=dict_row, autocommit=True)
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            self._quick, self._quick_pid = conn, os.getpid()
        return self._quick

    def try_advisory_lock(self, key: int, timeout_s: float) -> None:
        """Take session-level advisory lock `key` on the long-lived connection; TimeoutError
        after `timeout_s`. Polled, so the shared connection is never held while waiting."""
        deadline = time.monotonic() + timeout_s
        delay = 0.001
        while True:
            row = self.quick("SELECT pg_try_advisory_lock(%s) AS ok", (key,))
            if row is not None and row["ok"]:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"advisory lock {key} is held elsewhere")
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def advisory_unlock(self, key: int) -> None:
        """Release advisory lock `key` (a lock lost with its connection is already gone)."""
        try:
            self.quick("SELECT pg_advisory_unlock(%s) AS ok", (key,))
        except psycopg.OperationalError:
            pass

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        with self.transaction(write=False) as tx:
            tx.scalar("SELECT 1 AS ok")

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        with self._quick_lock:
            if self._quick is not None and self._quick_pid == os.getpid():
                self._quick.close()
            self._quick = None


_EXACT = decimal.Context(prec=120)


def _dec_add(a: Any, b: Any) -> str | None:
    """Exact a + b of two money texts (None counts as nothing)."""
    if a is None and b is None:
        return None
    with decimal.localcontext(_EXACT):
        return str(Decimal(a if a is not None else 0) + Decimal(b if b is not None else 0))


class _DecSum:
    """sum() of money texts, exact (SQLite's own sum() would add them as floats)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: Any, /) -> None:
        if value is not None:
            with decimal.localcontext(_EXACT):
                self.total += Decimal(value)

    def finalize(self) -> str:
        return str(self.total)


def _dec_differs(a: Any, b: Any) -> int:
    """Whether two money texts differ in value (1) or not (0); None differs from a number."""
    if a is None or b is None:
        return int((a is None) != (b is None))
    return int(Decimal(a) != Decimal(b))


def register_decimal_functions(conn: sqlite3.Connection) -> None:
    """`dec_add(a, b)`, `dec_differs(a, b)` and the aggregate `dec_sum(x)`: exact Decimal
    arithmetic and comparison on the text SQLite keeps money in."""
    conn.create_function("dec_add", 2, _dec_add, deterministic=True)
    conn.create_function("dec_differs", 2, _dec_differs, deterministic=True)
    conn.create_aggregate("dec_sum", 1, cast(Any, _DecSum))  # typeshed: finalize -> int


def to_sqlite(value: Any) -> Any:
    """SQLite storage of our types: ISO text for dates and UTC timestamps, text for money."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(TS_FORMAT)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    return value


def as_date(value: Any) -> date | None:
    """A date read from either dialect."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    return date.fromisoformat(str(value))


def as_ts(value: Any) -> datetime | None:
    """A UTC-aware timestamp read from either dialect."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def as_money(value: Any) -> Decimal | None:
    """A Decimal read from either dialect (SQLite keeps money as text)."""
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def ident(*names: str) -> sql.Identifier:
    """An SQL identifier, quoted by psycopg (also valid for SQLite)."""
    return sql.Identifier(*names)


class CopyStream:
    """An open `COPY ... FROM STDIN` (text format) on a transaction's connection."""

    def __init__(self, cursor: psycopg.Cursor[Any], statement: sql.Composed) -> None:
        self._cursor = cursor
        self._context = cursor.copy(statement)
        self._copy = self._context.__enter__()

    def write(self, lines: Sequence[str]) -> None:
        """Send lines (COPY text format, one row each)."""
        if lines:
            self._copy.write("\n".join(lines) + "\n")

    def close(self, error: BaseException | None = None) -> None:
        """End the COPY: its rows are in the table (or, given `error`, the COPY fails and
        the transaction with it)."""
        try:
            if error is None:
                self._context.__exit__(None, None, None)
            else:
                self._context.__exit__(type(error), error, error.__traceback__)
        finally:
            self._cursor.close()
