"""The imported editions, read from the read model's events (one import source each)."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from projections.db import Tx, as_date, as_ts
from projections.schema import LIVE

IMPORT_ACTOR = "import"


def editions(tx: Tx) -> list[dict[str, Any]]:
    """Each edition an import recorded events for (source `series:ref`), oldest first."""
    rows = tx.fetch(
        sql.SQL(
            "SELECT source, MIN(effective_date) AS day, MIN(recorded_at) AS imported_at, "
            "MAX(position) AS position, COUNT(*) AS events FROM {e} "
            "WHERE actor = %s AND source IS NOT NULL GROUP BY source"
        ).format(e=LIVE.events),
        (IMPORT_ACTOR,),
    )
    found = []
    for row in rows:
        series, sep, ref = str(row["source"]).partition(":")
        if not sep or not ref:
            continue
        found.append(
            {
                "ref": ref,
                "series": series,
                "source": row["source"],
                "date": as_date(row["day"]),
                "imported_at": as_ts(row["imported_at"]),
                "position": int(row["position"]),
                "events": int(row["events"]),
                "file": None,
                "file_sha256": None,
            }
        )
    found.sort(key=lambda e: (e["date"], e["series"], e["ref"]))
    return found
