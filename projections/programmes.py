"""The programmes index: one row per funding programme (id, name, currency, when created).

Caught up by the one catch-up loop under its own tracking row ("programmes"). The figures
of a programme are folded from its short stream on each read (projections/programme_view.py);
this table only saves the list of programmes a scan of the whole log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification
from psycopg import sql

from projections.db import Tx
from projections.schema import column_types, track

NAME = "programmes"
CREATED_TOPIC = "domain.programme:FundingProgramme.Created"


def setup(tx: Tx) -> None:
    """Create the index table and its tracking row (idempotent)."""
    track(tx, NAME)
    tx.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS pr_programmes (programme_id text PRIMARY KEY,"
            " name text NOT NULL, currency text NOT NULL, position {int} NOT NULL)"
        ).format(**column_types(tx.dialect))
    )


class ProgrammesProjector:
    """Adds a row when a programme is created."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper

    def process(self, tx: Tx, batch: Sequence[Notification]) -> None:
        rows = []
        for n in batch:
            if n.topic == CREATED_TOPIC:
                event: Any = self.mapper.to_domain_event(n)
                rows.append((str(n.originator_id), event.name, event.currency, n.id))
        tx.executemany(
            "INSERT INTO pr_programmes (programme_id, name, currency, position)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (programme_id) DO NOTHING",
            rows,
        )


def programme_ids(tx: Tx) -> list[UUID]:
    """Every programme's id, in the order they were created."""
    rows = tx.fetch("SELECT programme_id FROM pr_programmes ORDER BY position")
    return [UUID(r["programme_id"]) for r in rows]
