"""Alert tables of an older version (an outbox table beside pr_alerts, the figures in every
alert row) keep their alerts, figures and delivery state when the service starts on them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from projections import alert_queries, alert_schema, outbox
from projections.db import Database

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
OLD_DDL = (
    "CREATE TABLE pr_alerts (id text PRIMARY KEY, subscription_id text NOT NULL,"
    " subject text NOT NULL, kind text NOT NULL, metric text NOT NULL, value_before text,"
    " value_after text, figures_before text, figures_after text, cause_position {int} NOT NULL,"
    " cause_stream text NOT NULL, cause_version {int} NOT NULL, cause_type text NOT NULL,"
    " created_at {ts} NOT NULL)",
    "CREATE TABLE alert_outbox (alert_id text PRIMARY KEY, subscription_id text NOT NULL,"
    " status text NOT NULL, attempts {int} NOT NULL, first_at {ts} NOT NULL,"
    " next_attempt_at {ts} NOT NULL)",
)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(dialect="sqlite", sqlite_path=tmp_path / "old.sqlite3")
        yield database
        database.close()
        return
    url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    database = Database(dialect="postgres", conninfo=url, schema=schema, pool_size=1)
    yield database
    database.close()


def test_older_tables_keep_their_alerts_figures_and_pending_retries(db: Database) -> None:
    types = {"int": sql.SQL("bigint" if db.dialect == "postgres" else "integer")}
    types["ts"] = sql.SQL("timestamptz" if db.dialect == "postgres" else "text")
    retry_at = AT + timedelta(minutes=5)
    with db.transaction() as tx:
        for ddl in OLD_DDL:
            tx.execute(sql.SQL(ddl).format(**types))
        for alert_id, status, attempts in (("a-retry", "pending", 2), ("a-sent", "delivered", 1)):
            tx.execute(
                "INSERT INTO pr_alerts VALUES (%s, 's1', 'p1', 'raised', 'current_cost', '1',"
                " '9', '{\"name\": \"before\"}', '{\"name\": \"after\"}', 7, 'p1', 3,"
                " 'CostReestimated', %s)",
                (alert_id, AT),
            )
            tx.execute(
                "INSERT INTO alert_outbox VALUES (%s, 's1', %s, %s, %s, %s)",
                (alert_id, status, attempts, AT, retry_at),
            )
    with db.transaction() as tx:
        alert_schema.setup(tx)
        alert_schema.setup(tx)  # idempotent
        tx.execute(
            "INSERT INTO pr_alert_subscriptions (id, owner, rule, channel, target, active,"
            " version) VALUES ('s1', 'o', '{}', 'webhook', 'http://127.0.0.1:9/', %s, 1)",
            (True,),
        )
    with db.transaction(write=False) as tx:
        shown = {a["id"]: a for a in alert_queries.alerts(tx, owner="o")}
    assert {k: a["delivery"] for k, a in shown.items()} == {
        "a-retry": "pending",
        "a-sent": "delivered",
    }
    assert shown["a-retry"]["figures_after"] == {"name": "after"}
    assert outbox.claim_due(db, AT, 10, timedelta(minutes=2)) == []  # not due yet
    claimed = outbox.claim_due(db, retry_at, 10, timedelta(minutes=2))
    assert claimed == [("a-retry", 3, AT)]  # the third attempt of the retry, nothing else
