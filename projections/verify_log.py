"""The recorded results of hash-chain verifications: when, by whom, and what was found.

Verifying reads the whole chain, so the audit page shows the last recorded result and
runs a new one on request; `panorama verify` records its result here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from projections.chain_verify import VerifyReport
from projections.db import Database, Tx, as_ts
from projections.schema import column_types

TABLE = "audit_verifications"
_DDL = (
    "CREATE TABLE IF NOT EXISTS audit_verifications (at {ts} NOT NULL, actor text NOT NULL,"
    " ok {bool} NOT NULL, report text NOT NULL)"
)


@dataclass(frozen=True)
class Recorded:
    """One verification as recorded: its time, who ran it, and the report (as the API's)."""

    at: datetime
    actor: str
    report: dict[str, Any]


def setup(tx: Tx) -> None:
    """Create the table (idempotent; run through `run_ddl`)."""
    tx.execute(sql.SQL(_DDL).format(**column_types(tx.dialect)))


def record(db: Database, report: VerifyReport, at: datetime, actor: str) -> Recorded:
    """Keep a verification's result."""
    data = report.as_dict()
    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO audit_verifications (at, actor, ok, report) VALUES (%s, %s, %s, %s)",
            (at, actor, report.ok, json.dumps(data)),
        )
    return Recorded(at, actor, data)


def latest(tx: Tx) -> Recorded | None:
    """The last recorded verification, or None."""
    row = tx.fetchone("SELECT at, actor, report FROM audit_verifications ORDER BY at DESC LIMIT 1")
    if row is None:
        return None
    at = as_ts(row["at"])
    assert at is not None
    return Recorded(at, str(row["actor"]), json.loads(row["report"]))
