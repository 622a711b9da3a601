"""Verifying the hash chain against the raw event table.

`verify` reads the event store's own table directly (not through the library), in
notification order and in batches, inside one read-only snapshot, and walks it beside the
stored chain. For each chain position it recomputes the link from the raw event and the
previous stored link, so the first finding names exactly the event that changed:

- altered: the event at a chained position no longer hashes to its link (state bytes,
  topic, stream id, version or recording time changed), or holds another stream/version;
- inserted: an event at or below the chain's position that the chain never saw (a forged
  row, or a chain row that was deleted: the chain has a gap there);
- removed: a chain position whose event is gone from the event store.

Events past the chain's position are counted as "not yet chained", never as tampering.
`recompute_head` recomputes the whole chain from GENESIS over the raw events (ignoring the
stored links): what a signed checkpoint is checked against.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from psycopg import sql

from domain.application import Portfolio
from projections.db import Database, Tx, ident
from projections.hashchain import (
    GENESIS,
    TABLE,
    UNDECODABLE,
    chain_position,
    link,
    link_at,
    recorded_at,
)

Kind = Literal["altered", "inserted", "removed"]
BATCH = 1000


@dataclass(frozen=True)
class RawEvent:
    id: int
    stream_id: str
    version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class ChainRow:
    position: int
    stream_id: str
    version: int
    link: bytes


@dataclass(frozen=True)
class Finding:
    kind: Kind
    position: int
    stream_id: str
    version: int
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int  # chain positions whose event was recomputed and matched
    position: int  # how far the chain reaches
    head: int  # the last notification id in the event store
    not_yet_chained: int  # events past the chain's position
    chain_head: str  # hex link at the chain's position
    finding: Finding | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _id_column(tx: Tx) -> sql.Composable:
    # The library's SQLite table keys notifications by rowid; PostgreSQL has a column.
    return sql.SQL("notification_id" if tx.dialect == "postgres" else "rowid")


def _stream_id(value: Any) -> str:
    """The canonical UUID text (SQLite keeps ids as 32 hex digits, PostgreSQL as uuid)."""
    try:
        return str(value if isinstance(value, UUID) else UUID(str(value)))
    except ValueError:  # not a UUID any more: hashed as stored, so it cannot match
        return str(value)


def raw_events(
    tx: Tx, table: str, upto: int | None, batch: int = BATCH, after: int = 0
) -> Iterator[RawEvent]:
    """The event table's rows in notification order, read in batches."""
    col = _id_column(tx)
    query = sql.SQL(
        "SELECT {col} AS notification_id, originator_id, originator_version, topic, state "
        "FROM {tbl} WHERE {col} > %s AND {col} <= %s ORDER BY {col} LIMIT %s"
    ).format(col=col, tbl=ident(table))
    limit = upto if upto is not None else 2**63 - 1
    while True:
        rows = tx.fetch(query, (after, limit, batch))
        for r in rows:
            yield RawEvent(
                int(r["notification_id"]),
                _stream_id(r["originator_id"]),
                int(r["originator_version"]),
                str(r["topic"]),
                bytes(r["state"]),
            )
        if len(rows) < batch:
            return
        after = int(rows[-1]["notification_id"])


def chain_rows(tx: Tx, upto: int, batch: int = BATCH) -> Iterator[ChainRow]:
    """The stored chain up to `upto`, in position order, read in batches."""
    query = sql.SQL(
        "SELECT position, originator_id, originator_version, link FROM {} "
        "WHERE position > %s AND position <= %s ORDER BY position LIMIT %s"
    ).format(TABLE)
    after = 0
    while True:
        rows = tx.fetch(query, (after, upto, batch))
        for r in rows:
            yield ChainRow(
                int(r["position"]),
                str(r["originator_id"]),
                int(r["originator_version"]),
                bytes(r["link"]),
            )
        if len(rows) < batch:
            return
        after = int(rows[-1]["position"])


def raw_link(mapper: Mapper[UUID], previous: bytes, event: RawEvent) -> bytes:
    """The link of a raw row; a state or id that no longer decodes hashes as UNDECODABLE."""
    try:
        stored = StoredEvent(UUID(event.stream_id), event.version, event.topic, event.state)
        when = recorded_at(mapper, stored)
    except Exception:  # tampered bytes: the link cannot match, which is the finding
        when = UNDECODABLE
    return link(previous, event.stream_id, event.version, event.topic, when, event.state)


def _compare(mapper: Mapper[UUID], previous: bytes, ev: RawEvent, ch: ChainRow) -> Finding | None:
    if (ev.stream_id, ev.version) != (ch.stream_id, ch.version):
        detail = f"chained as {ch.stream_id} v{ch.version}, now {ev.stream_id} v{ev.version}"
        return Finding("altered", ch.position, ch.stream_id, ch.version, detail)
    if raw_link(mapper, previous, ev) != ch.link:
        return Finding(
            "altered",
            ch.position,
            ch.stream_id,
            ch.version,
            "the stored event (state bytes, topic or recording time) differs from what "
            "was chained: its recomputed link does not match",
        )
    return None


def _walk(
    mapper: Mapper[UUID], tx: Tx, table: str, upto: int, batch: int
) -> tuple[int, Finding | None]:
    events = raw_events(tx, table, upto, batch)
    chain = chain_rows(tx, upto, batch)
    ev, ch = next(events, None), next(chain, None)
    previous, checked = GENESIS, 0
    while ev is not None or ch is not None:
        if ch is None or (ev is not None and ev.id < ch.position):
            assert ev is not None
            return checked, Finding(
                "inserted",
                ev.id,
                ev.stream_id,
                ev.version,
                "this event is at or below the chain's position but was never chained "
                "(a forged row, or its chain link is missing)",
            )
        if ev is None or ch.position < ev.id:
            return checked, Finding(
                "removed",
                ch.position,
                ch.stream_id,
                ch.version,
                "this chained event is missing from the event store",
            )
        finding = _compare(mapper, previous, ev, ch)
        if finding is not None:
            return checked, finding
        checked += 1
        previous = ch.link
        ev, ch = next(events, None), next(chain, None)
    return checked, None


def verify(db: Database, portfolio: Portfolio, *, batch_size: int = BATCH) -> VerifyReport:
    """Recompute the chain from the raw events; report the first tampered event, if any."""
    table = portfolio.recorder.events_table_name  # type: ignore[attr-defined]
    with db.transaction(write=False) as tx:
        upto = chain_position(tx)
        checked, finding = _walk(portfolio.mapper, tx, table, upto, batch_size)
        col = _id_column(tx)
        head = tx.scalar(sql.SQL("SELECT max({}) FROM {}").format(col, ident(table)))
        pending = tx.scalar(
            sql.SQL("SELECT count(*) FROM {} WHERE {} > %s").format(ident(table), col), (upto,)
        )
        stored_head = link_at(tx, upto)
    return VerifyReport(
        ok=finding is None,
        checked=checked,
        position=upto,
        head=int(head or 0),
        not_yet_chained=int(pending or 0),
        chain_head=(stored_head or b"").hex(),
        finding=finding,
    )


def recompute_head(
    db: Database, portfolio: Portfolio, upto: int, *, batch_size: int = BATCH
) -> tuple[str, str | None, int]:
    """(recomputed head, stored link, chain position) at `upto`, from GENESIS over raw rows."""
    table = portfolio.recorder.events_table_name  # type: ignore[attr-defined]
    with db.transaction(write=False) as tx:
        previous = GENESIS
        for event in raw_events(tx, table, upto, batch_size):
            previous = raw_link(portfolio.mapper, previous, event)
        stored = link_at(tx, upto)
        reached = chain_position(tx)
    return previous.hex(), None if stored is None else stored.hex(), reached
