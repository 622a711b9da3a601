"""The editions read model: each imported edition (Edition events), with its file and headline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification
from psycopg import sql

from projections.db import Tx, as_date, as_ts, ident
from projections.schema import LIVE, column_types, track

NAME = "editions"
TABLE = ident("pr_editions")
EDITION_TOPIC_PREFIX = "domain.edition:Edition."
IMPORT_ACTOR = "import"


def setup(tx: Tx) -> None:
    """Create the editions table and its tracking row (idempotent)."""
    track(tx, NAME)
    t = column_types(tx.dialect)
    tx.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {tbl} (edition_id text PRIMARY KEY, series text NOT NULL, "
            "ref text NOT NULL, edition_date {date} NOT NULL, file text NOT NULL, "
            "file_sha256 text NOT NULL, currency text NOT NULL, unit text, price_base text, "
            "projects integer NOT NULL, headline text, imported_at {ts} NOT NULL, "
            "position {int} NOT NULL, headline_position {int})"
        ).format(tbl=TABLE, **t)
    )


class EditionsProjector:
    """Folds Edition events into pr_editions (one row per edition)."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper

    def process(self, tx: Tx, batch: Sequence[Notification]) -> int:
        """Apply the batch's Edition events; return how many there were."""
        mine = [n for n in batch if n.topic.startswith(EDITION_TOPIC_PREFIX)]
        for n in mine:
            event: Any = self.mapper.to_domain_event(n)
            kind = type(event).__name__
            headline = _json(event.headline)
            if kind == "Imported":
                tx.execute(
                    sql.SQL(
                        "INSERT INTO {tbl} (edition_id, series, ref, edition_date, file, "
                        "file_sha256, currency, unit, price_base, projects, headline, "
                        "imported_at, position) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                        "ON CONFLICT (edition_id) DO NOTHING"
                    ).format(tbl=TABLE),
                    (
                        str(event.originator_id),
                        event.series,
                        event.ref,
                        event.effective_date,
                        event.file,
                        event.file_sha256,
                        event.currency,
                        event.unit,
                        event.price_base,
                        event.projects,
                        headline,
                        event.timestamp,
                        n.id,
                    ),
                )
            elif kind == "HeadlinePublished":
                tx.execute(
                    sql.SQL(
                        "UPDATE {tbl} SET headline = %s, headline_position = %s "
                        "WHERE edition_id = %s"
                    ).format(tbl=TABLE),
                    (headline, n.id, str(event.originator_id)),
                )
        return len(mine)


def _json(headline: dict[str, Any] | None) -> str | None:
    if headline is None:
        return None
    return json.dumps({k: str(v) if isinstance(v, Decimal) else v for k, v in headline.items()})


def _headline(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    loaded: dict[str, Any] = json.loads(text)
    return {
        k: Decimal(v) if k not in ("projects", "interministerial_projects") and _number(v) else v
        for k, v in loaded.items()
    }


def _number(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        Decimal(value)
    except ArithmeticError:
        return False
    return True


def editions(tx: Tx) -> list[dict[str, Any]]:
    """Each imported edition, oldest first: its record, else what its project events show."""
    recorded = {
        f"{r['series']}:{r['ref']}": r
        for r in tx.fetch(sql.SQL("SELECT * FROM {tbl}").format(tbl=TABLE))
    }
    rows = tx.fetch(
        sql.SQL(
            "SELECT source, MIN(effective_date) AS day, MIN(recorded_at) AS imported_at, "
            "MAX(position) AS position, COUNT(*) AS events FROM {e} "
            "WHERE actor = %s AND source IS NOT NULL GROUP BY source"
        ).format(e=LIVE.events),
        (IMPORT_ACTOR,),
    )
    events = {str(r["source"]): r for r in rows}
    found = []
    for source in sorted(set(recorded) | set(events)):
        series, sep, ref = source.partition(":")
        if not sep or not ref:
            continue
        found.append(_edition(series, ref, recorded.get(source), events.get(source)))
    found.sort(key=lambda e: (e["date"], e["series"], e["ref"]))
    return found


def _edition(
    series: str, ref: str, record: dict[str, Any] | None, events: dict[str, Any] | None
) -> dict[str, Any]:
    edition: dict[str, Any] = {
        "ref": ref,
        "series": series,
        "source": f"{series}:{ref}",
        "events": int(events["events"]) if events else 0,
        "file": None,
        "file_sha256": None,
        "currency": None,
        "unit": None,
        "price_base": None,
        "listed_projects": None,
        "headline": None,
    }
    if events is not None:
        edition["date"] = as_date(events["day"])
        edition["imported_at"] = as_ts(events["imported_at"])
        edition["position"] = int(events["position"])
    if record is not None:
        edition |= {
            "date": as_date(record["edition_date"]),
            "imported_at": as_ts(record["imported_at"]),
            "position": int(record["position"]),
            "file": record["file"],
            "file_sha256": record["file_sha256"],
            "currency": record["currency"],
            "unit": record["unit"],
            "price_base": record["price_base"],
            "listed_projects": int(record["projects"]),
            "headline": _headline(record["headline"]),
        }
    return edition


def edition(tx: Tx, series: str | None, ref: str) -> list[dict[str, Any]]:
    """The imported editions with reference `ref` (of `series` when given)."""
    return [
        e for e in editions(tx) if e["ref"] == ref and (series is None or e["series"] == series)
    ]
