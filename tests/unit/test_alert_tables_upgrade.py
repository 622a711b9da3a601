"""Alert tables of an older version (an outbox table beside pr_alerts, the figures in every
alert row; alert ids as text on PostgreSQL) keep their alerts, figures and delivery state
when the service starts on them."""

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
# Alert ids as every version made them: uuid5 texts.
RETRY = "0e8834a9-e9cc-5d95-ba0c-2195d8c9b736"
SENT = "5f3e6a1c-1b2d-5c4e-9f8a-7b6c5d4e3f21"
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
        for alert_id, status, attempts in ((RETRY, "pending", 2), (SENT, "delivered", 1)):
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
        RETRY: "pending",
        SENT: "delivered",
    }
    assert shown[RETRY]["figures_after"] == {"name": "after"}
    assert outbox.claim_due(db, AT, 10, timedelta(minutes=2)) == []  # not due yet
    claimed = outbox.claim_due(db, retry_at, 10, timedelta(minutes=2))
    assert claimed == [(RETRY, 3, AT)]  # the third attempt of the retry, nothing else


# The previous version's alert and delivery-log tables: the alert id as text.
TEXT_ID_DDL = (
    "CREATE TABLE pr_alerts (id text PRIMARY KEY, subscription_id text NOT NULL,"
    " subject text NOT NULL, kind text NOT NULL, metric text NOT NULL, value_before text,"
    " value_after text, figures_before text, figures_after text, cause_position {int} NOT NULL,"
    " cause_stream text NOT NULL, cause_version {int} NOT NULL, cause_type text NOT NULL,"
    " created_at {ts} NOT NULL, status text NOT NULL DEFAULT 'pending',"
    " attempts {int} NOT NULL DEFAULT 0, first_at {ts}, next_attempt_at {ts})",
    "CREATE TABLE alert_deliveries (alert_id text NOT NULL, attempt {int} NOT NULL,"
    " at {ts} NOT NULL, status text NOT NULL, http_status {int}, error text,"
    " next_attempt_at {ts}, PRIMARY KEY (alert_id, attempt))",
)


def _id_type(db: Database, table: str, column: str) -> str:
    with db.transaction(write=False) as tx:
        if db.dialect == "sqlite":
            pragma = sql.SQL("PRAGMA table_info({})").format(sql.Identifier(table))
            return next(str(r["type"]).lower() for r in tx.fetch(pragma) if r["name"] == column)
        return str(
            tx.scalar(
                "SELECT data_type FROM information_schema.columns WHERE table_schema ="
                " current_schema() AND table_name = %s AND column_name = %s",
                (table, column),
            )
        )


def test_text_alert_ids_become_uuid_and_read_deliver_and_redeliver_as_before(
    db: Database,
) -> None:
    types = {"int": sql.SQL("bigint" if db.dialect == "postgres" else "integer")}
    types["ts"] = sql.SQL("timestamptz" if db.dialect == "postgres" else "text")
    later = AT + timedelta(minutes=5)
    with db.transaction() as tx:
        for ddl in TEXT_ID_DDL:
            tx.execute(sql.SQL(ddl).format(**types))
        for alert_id, status, attempts in ((RETRY, "pending", 1), (SENT, "delivered", 1)):
            tx.execute(
                "INSERT INTO pr_alerts VALUES (%s, 's1', 'p1', 'raised', 'current_cost', '1',"
                " '9', NULL, '{\"name\": \"after\"}', 7, 'p1', 3, 'CostReestimated', %s,"
                " %s, %s, %s, %s)",
                (alert_id, AT, status, attempts, AT, later),
            )
            tx.execute(
                "INSERT INTO alert_deliveries VALUES (%s, 1, %s, %s, %s, NULL, %s)",
                (alert_id, AT, "failed" if status == "pending" else "delivered", 500, later),
            )
    with db.transaction() as tx:
        alert_schema.setup(tx)
        alert_schema.setup(tx)  # idempotent
        tx.execute(
            "INSERT INTO pr_alert_subscriptions (id, owner, rule, channel, target, active,"
            " version) VALUES ('s1', 'o', '{}', 'webhook', 'http://127.0.0.1:9/', %s, 1)",
            (True,),
        )
    native = "uuid" if db.dialect == "postgres" else "text"  # SQLite keeps text
    assert _id_type(db, "pr_alerts", "id") == native
    assert _id_type(db, "alert_deliveries", "alert_id") == native
    with db.transaction(write=False) as tx:
        shown = alert_queries.alerts(tx, owner="o")
        attempts = alert_queries.deliveries(tx, "s1")
        owner_of = alert_queries.alert_subscription(tx, RETRY)
    assert [a["id"] for a in shown] == sorted([RETRY, SENT])  # the same strings
    assert all(type(a["id"]) is str for a in shown)
    assert sorted((d["alert_id"], d["attempt"], d["status"]) for d in attempts) == sorted(
        [(RETRY, 1, "failed"), (SENT, 1, "delivered")]
    )
    assert all(type(d["alert_id"]) is str for d in attempts)
    assert owner_of == "s1"
    claimed = outbox.claim_due(db, later, 10, timedelta(minutes=2))
    assert claimed == [(RETRY, 2, AT)]  # the retry's second attempt, its id a string
    assert type(claimed[0][0]) is str
    alert, sub = outbox.alert_and_subscription(db, RETRY)
    assert alert is not None and sub is not None and alert["id"] == RETRY
    assert outbox.redeliver(db, SENT, later)
    assert [c[0] for c in outbox.claim_due(db, later, 10, timedelta(minutes=2))] == [SENT]


# The previous version's condition table: keyed by (subscription, subject), with an index on
# the subject alone.
SUBSCRIPTION_FIRST_DDL = (
    "CREATE TABLE pr_alert_state (subscription_id text NOT NULL, subject text NOT NULL,"
    " active {bool} NOT NULL, value text, PRIMARY KEY (subscription_id, subject))",
    "CREATE INDEX pr_alert_state_by_subject ON pr_alert_state (subject)",
)


def _indexes(db: Database, table: str) -> dict[str, list[str]]:
    """Each index of `table` (the primary key as "pkey") -> its columns in order."""
    with db.transaction(write=False) as tx:
        if db.dialect == "sqlite":
            found = {}
            for r in tx.fetch(sql.SQL("PRAGMA index_list({})").format(sql.Identifier(table))):
                info = sql.SQL("PRAGMA index_info({})").format(sql.Identifier(r["name"]))
                columns = [str(c["name"]) for c in sorted(tx.fetch(info), key=lambda c: c["seqno"])]
                found["pkey" if r["origin"] == "pk" else str(r["name"])] = columns
            return found
        rows = tx.fetch(
            "SELECT c.relname AS name, i.indisprimary AS pk, a.attname AS col"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k (attnum, n) ON true"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " WHERE i.indrelid = to_regclass(%s) ORDER BY c.relname, k.n",
            (table,),
        )
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault("pkey" if r["pk"] else str(r["name"]), []).append(str(r["col"]))
        return out


def test_conditions_keyed_by_subscription_first_keep_their_rows_and_take_writes(
    db: Database,
) -> None:
    from projections import alert_store

    types = {"bool": sql.SQL("boolean" if db.dialect == "postgres" else "integer")}
    with db.transaction() as tx:
        for ddl in SUBSCRIPTION_FIRST_DDL:
            tx.execute(sql.SQL(ddl).format(**types))
        for sid, subject in (("s1", "p1"), ("s1", "p2"), ("s2", "p1")):
            tx.execute("INSERT INTO pr_alert_state VALUES (%s, %s, %s, '9')", (sid, subject, True))
    with db.transaction() as tx:
        alert_schema.setup(tx)
        alert_schema.setup(tx)  # idempotent
    indexes = _indexes(db, "pr_alert_state")
    assert indexes["pr_alert_state_by_subscription"] == ["subscription_id"]
    if db.dialect == "postgres":  # keyed by subject first; the subject's own index dropped
        assert indexes["pkey"] == ["subject", "subscription_id"]
        assert "pr_alert_state_by_subject" not in indexes
    else:  # an older SQLite store keeps its key and that index
        assert indexes["pkey"] == ["subscription_id", "subject"]
    with db.transaction() as tx:
        alert_store.record_rows(tx, [], [("s1", "p1", False, "1"), ("s3", "p1", True, "5")])
    with db.transaction(write=False) as tx:
        of_p1 = alert_store.conditions_of_subjects(tx, ["p1"])
        of_s1 = alert_store.conditions_of_subscription(tx, "s1")
    assert {k: (c.active, c.value) for k, c in of_p1.items()} == {
        ("s1", "p1"): (False, "1"),
        ("s2", "p1"): (True, "9"),
        ("s3", "p1"): (True, "5"),
    }
    assert sorted(of_s1) == [("s1", "p1"), ("s1", "p2")]
