"""The projections, in the order a commit reaches them: name, tables, projector.

The alerts come right after the project states (before the hash chain, the editions and
the programmes): a webhook received can be followed by a read that shows its change, and
the delivery of new alerts starts as early as that allows (workers/tasks.py).

`catch_up(db, portfolio, name)` is the one catch-up of every projection; `setup_all`
creates every read model at start-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID
from weakref import WeakKeyDictionary

from psycopg import sql

from domain.application import Portfolio
from domain.values import canonical_ministry
from projections import alerts, editions, hashchain, programmes
from projections.catchup import (
    BATCH_SIZE,
    PassReads,
    Projector,
    Warm,
    run_projection,
    tracking_positions,
)
from projections.db import Database, Tx
from projections.ddl import run_ddl
from projections.figure_tables import (
    drop_stale_name_keys,
    figures_missing,
    fill_name_keys,
    name_keys_missing,
    spans_outdated,
)
from projections.project_states import ProjectStatesProjector, derive_figure_tables
from projections.recorders import PostgresRecorder
from projections.schema import LIVE, PROJECTION, create_tables, drop_figure_tables


def _setup_states(tx: Tx) -> None:
    """The project-states tables; the figure tables derived once if they came after them
    (or made anew and derived again if they predate the spans' compared columns), and the
    spans' name keys filled once if the store predates them."""
    if spans_outdated(tx, LIVE):
        drop_figure_tables(tx, LIVE)
    drop_stale_name_keys(tx)  # made under another Unicode version: made anew below
    create_tables(tx, LIVE)
    if figures_missing(tx, LIVE):
        derive_figure_tables(tx, LIVE)
    if name_keys_missing(tx, LIVE):  # a store made before the spans' name keys: once
        fill_name_keys(tx, LIVE)


@dataclass(frozen=True)
class Projection:
    """A read model: how to create its tables and make the projector that folds into them."""

    name: str
    setup: Callable[[Tx], None]
    projector: Callable[[Portfolio], Projector]


def _alerts_projector(portfolio: Portfolio) -> Projector:
    """The alerts projector (kept warm between catch-ups by the loop's `keep`); it resolves
    ministry codes through the reference as recorded at the start of each batch."""

    def load(project_id: UUID, lte: int) -> list[Any]:
        return list(portfolio.events.get(project_id, lte=lte)) if lte > 0 else []

    def load_streams(wanted: Mapping[UUID, int]) -> dict[UUID, list[Any]]:
        """The streams a batch refolds: one statement on PostgreSQL, else one by one."""
        recorder = portfolio.recorder
        if not isinstance(recorder, PostgresRecorder):
            return {oid: load(oid, lte) for oid, lte in wanted.items()}
        decode = portfolio.mapper.to_domain_event
        return {
            oid: [decode(e) for e in stored]
            for oid, stored in recorder.select_streams(wanted).items()
        }

    def reference() -> tuple[Callable[[str], str], dict[str, str]]:
        recorded = portfolio.ministries()
        codes = dict(recorded.codes) if recorded is not None else {}

        def stable(code: str) -> str:
            canonical = canonical_ministry(code)
            return codes.get(canonical, canonical)

        return stable, codes

    return alerts.AlertsProjector(
        portfolio.mapper, load, reference=reference, load_streams=load_streams
    )


PROJECTIONS: dict[str, Projection] = {
    p.name: p
    for p in (
        Projection(
            PROJECTION,
            _setup_states,
            lambda portfolio: ProjectStatesProjector(portfolio.mapper, LIVE),
        ),
        Projection(alerts.NAME, alerts.setup, _alerts_projector),
        Projection(
            hashchain.NAME,
            hashchain.setup,
            lambda portfolio: hashchain.HashChainProjector(portfolio.mapper),
        ),
        Projection(
            editions.NAME,
            editions.setup,
            lambda portfolio: editions.EditionsProjector(portfolio.mapper),
        ),
        Projection(
            programmes.NAME,
            programmes.setup,
            lambda portfolio: programmes.ProgrammesProjector(portfolio.mapper),
        ),
    )
}


# Per process and database: the projectors of the last catch-up, reused by the next one.
_WARM: WeakKeyDictionary[Database, dict[str, Warm]] = WeakKeyDictionary()


def setup_all(db: Database) -> None:
    """Create every read model and its tracking row (idempotent, under the DDL lock)."""
    for projection in PROJECTIONS.values():
        run_ddl(db, projection.setup)


def catch_up(
    db: Database,
    portfolio: Portfolio,
    name: str,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    stop_after: int | None = None,
    until: int | None = None,
    reads: PassReads | None = None,
) -> int:
    """Apply every notification past projection `name`'s position; return how many.

    The projector stays warm in this process between catch-ups (projections.catchup.Warm);
    `reads`: the notification batches of a pass of every projection, read once for them all.
    """
    projection = PROJECTIONS[name]
    return run_projection(
        db,
        portfolio,
        name,
        lambda: projection.projector(portfolio),
        batch_size=batch_size,
        progress=progress,
        stop_after=stop_after,
        until=until,
        keep=_WARM.setdefault(db, {}),
        reads=reads,
    )


_HEAD_TEXT: dict[tuple[str, str, bool], str] = {}


def _head_statement(recorder: PostgresRecorder, with_positions: bool) -> str:
    """The log's head (a row named NULL), and with `with_positions` every tracking
    position too, in one statement: rendered to text once per (schema, table)."""
    key = (recorder.datastore.schema, recorder.events_table_name, with_positions)
    text = _HEAD_TEXT.get(key)
    if text is None:
        events = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
        head = sql.SQL("SELECT NULL AS name, max(notification_id) AS position FROM {}")
        statement: sql.Composable = head.format(events)
        if with_positions:
            statement += sql.SQL(" UNION ALL SELECT name, position FROM pr_tracking")
        text = _HEAD_TEXT.setdefault(key, statement.as_string())
    return text


def _head_and_positions(db: Database, portfolio: Portfolio) -> tuple[int, dict[str, int]]:
    """The head of the log and every projection's tracking position: on PostgreSQL one
    statement on the process's long-lived connection (it was two round trips a pass)."""
    recorder = portfolio.recorder
    if db.dialect != "postgres" or not isinstance(recorder, PostgresRecorder):
        return recorder.max_notification_id() or 0, tracking_positions(db)
    head, at = 0, {}
    for row in db.quick_all(_head_statement(recorder, True)):
        if row["name"] is None:
            head = int(row["position"] or 0)
        else:
            at[str(row["name"])] = int(row["position"])
    return head, at


def _head(db: Database, portfolio: Portfolio) -> int:
    """The head of the log: on PostgreSQL on the long-lived connection (its statement
    prepared there after a few passes), not a pooled checkout."""
    recorder = portfolio.recorder
    if db.dialect != "postgres" or not isinstance(recorder, PostgresRecorder):
        return recorder.max_notification_id() or 0
    row = db.quick(_head_statement(recorder, False))
    return 0 if row is None else int(row["position"] or 0)


# In a pass of all the projections, the project states catch up again before the next
# projection when this long has passed since they last did and new commits have come.
STATES_FIRST_AFTER_S = 0.005


def _catch_up_one(
    db: Database,
    portfolio: Portfolio,
    name: str,
    batch_size: int,
    then: Callable[[str, int], None] | None,
    reads: PassReads | None = None,
) -> tuple[int, Exception | None]:
    """One projection's catch-up: (applied, None), or (0, the error) if it failed."""
    try:
        count = catch_up(db, portfolio, name, batch_size=batch_size, reads=reads)
        if then is not None:
            then(name, count)
        return count, None
    except Exception as error:  # recorded in pr_tracking by the loop; raised by the caller
        return 0, error


def catch_up_all(
    db: Database,
    portfolio: Portfolio,
    *,
    batch_size: int = BATCH_SIZE,
    then: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Catch every projection up, each on its own; a failure of one does not stop the others.

    `then(name, applied)` runs after each projection's catch-up (e.g. to start the delivery
    of new alerts while the next projections catch up). A projection already at the head of
    the log (read first) is skipped without its lock: an empty pass costs two statements, not
    four per projection. The projections at the same position share one read of the log
    (`PassReads`); the project states' second catch-up, for commits that came during the
    pass, reads afresh.
    """
    reads = PassReads(portfolio)
    applied: dict[str, int] = {}
    first_error: Exception | None = None
    head, at = _head_and_positions(db, portfolio)
    states_done = time.monotonic()
    for name in PROJECTIONS:
        if name != PROJECTION and time.monotonic() - states_done > STATES_FIRST_AFTER_S:
            # Commits may have come while the projections before this one caught up: the
            # project states (what read-your-writes waits for) catch them up first, rather
            # than after the rest of the pass.
            states_done = time.monotonic()
            latest = _head(db, portfolio)
            if latest > head:
                head = latest
                name_done = _catch_up_one(db, portfolio, PROJECTION, batch_size, then)
                applied[PROJECTION] = applied.get(PROJECTION, 0) + name_done[0]
                first_error = first_error or name_done[1]
                states_done = time.monotonic()
        if at.get(name, -1) >= head:
            applied.setdefault(name, 0)
            continue
        count, error = _catch_up_one(db, portfolio, name, batch_size, then, reads)
        applied[name] = applied.get(name, 0) + count
        first_error = first_error or error
        if name == PROJECTION:
            states_done = time.monotonic()
    if first_error is not None:
        raise first_error
    return applied
