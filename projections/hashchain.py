"""The hash chain: a tamper-evident projection of the whole notification log.

Every event, in notification order, gets a link

    link(n) = SHA-256( F(link(n-1)) || F(stream id) || F(version) || F(topic)
                       || F(recording time) || F(stored state bytes) )

where F(x) is x's length as 8 bytes big-endian followed by x's bytes, the stream id is the
canonical lowercase UUID text, the version its decimal text, the recording time the
event's own timestamp decoded from its stored state (`mapper.to_domain_event(...)`) in ISO
8601 UTC (`2026-12-01T09:00:00.123456+00:00`), and link(0) is the fixed GENESIS below.
The links are kept in `pr_hash_chain` (position = notification id), caught up by the same
loop, consumer lock and compare-and-set tracking (row "hash_chain") as project_states.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification, StoredEvent
from psycopg import sql

from projections.catchup import position
from projections.db import Tx, ident
from projections.schema import track

NAME = "hash_chain"
TABLE = ident("pr_hash_chain")
COLUMNS = ("position", "originator_id", "originator_version", "link")
GENESIS = hashlib.sha256(b"panorama:hash_chain:genesis:v1").digest()
UNDECODABLE = ""  # the recording time of a state that no longer decodes


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def link(
    previous: bytes, stream_id: str, version: int, topic: str, recorded_at: str, state: bytes
) -> bytes:
    """The link of one event after `previous` (length-prefixed fields, SHA-256)."""
    digest = hashlib.sha256()
    for data in (
        previous,
        stream_id.encode(),
        str(version).encode(),
        topic.encode(),
        recorded_at.encode(),
        state,
    ):
        digest.update(_field(data))
    return digest.digest()


def recorded_at(mapper: Mapper[UUID], stored: StoredEvent) -> str:
    """The event's recording time (ISO UTC), decoded from its stored state."""
    timestamp: Any = getattr(mapper.to_domain_event(stored), "timestamp", None)
    if timestamp is None:
        raise ValueError(f"event {stored.originator_id} v{stored.originator_version} has no time")
    return str(timestamp.astimezone(UTC).isoformat())


def event_link(mapper: Mapper[UUID], previous: bytes, stored: StoredEvent) -> bytes:
    """The link of a stored event; raises if its state does not decode (at chaining time)."""
    return link(
        previous,
        str(stored.originator_id),
        int(stored.originator_version),
        stored.topic,
        recorded_at(mapper, stored),
        bytes(stored.state),
    )


def setup(tx: Tx) -> None:
    """Create the chain's table and tracking row (idempotent)."""
    track(tx, NAME)
    integer = "bigint" if tx.dialect == "postgres" else "integer"
    blob = "bytea" if tx.dialect == "postgres" else "blob"
    tx.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {tbl} (position {int} PRIMARY KEY, "
            "originator_id text NOT NULL, originator_version {int} NOT NULL, "
            "link {blob} NOT NULL)"
        ).format(tbl=TABLE, int=sql.SQL(integer), blob=sql.SQL(blob))
    )


def last_link(tx: Tx, at: int | None = None) -> tuple[int, bytes]:
    """(position, link) of the last chained event at or before `at` (default: the end)."""
    if at is None:
        row = tx.fetchone(
            sql.SQL("SELECT position, link FROM {} ORDER BY position DESC LIMIT 1").format(TABLE)
        )
    else:
        row = tx.fetchone(
            sql.SQL(
                "SELECT position, link FROM {} WHERE position <= %s ORDER BY position DESC LIMIT 1"
            ).format(TABLE),
            (at,),
        )
    if row is None:
        return 0, GENESIS
    return int(row["position"]), bytes(row["link"])


def link_at(tx: Tx, at: int) -> bytes | None:
    """The stored link at chain position `at` (GENESIS at 0; None when there is none)."""
    if at == 0:
        return GENESIS
    value = tx.scalar(sql.SQL("SELECT link FROM {} WHERE position = %s").format(TABLE), (at,))
    return None if value is None else bytes(value)


def chain_head(tx: Tx, at: int | None = None) -> str:
    """The chain head (hex) at the last chained event at or before `at`.

    The query API passes its projection's position: the head then covers exactly the
    events its rows reflect, or the chain's own position when the chain is behind.
    """
    return last_link(tx, at)[1].hex()


def chain_position(tx: Tx) -> int:
    """How far the chain has been caught up (its tracking position)."""
    return position(tx, NAME)


class HashChainProjector:
    """Appends one link per notification, after the last stored link."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper
        # The link this projector appended last: a warm projector is reused only while the
        # tracking row is the one its last (committed) batch wrote, so it is the chain's last.
        self._last: bytes | None = None

    def process(self, tx: Tx, batch: Sequence[Notification]) -> None:
        # Read in this transaction: it commits with the tracking compare-and-set.
        previous = self._last if self._last is not None else last_link(tx)[1]
        self._last = None  # until this batch is known to have been written
        rows: list[tuple[int, str, int, bytes]] = []
        for notification in batch:
            previous = event_link(self.mapper, previous, notification)
            rows.append(
                (
                    notification.id,
                    str(notification.originator_id),
                    int(notification.originator_version),
                    previous,
                )
            )
        tx.copy_rows(TABLE, COLUMNS, rows)
        self._last = previous
