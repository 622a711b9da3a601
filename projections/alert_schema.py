"""The tables of the alerts projection and of its deliveries, for both dialects."""

from __future__ import annotations

from psycopg import sql

from projections import programme_alerts
from projections.db import Tx
from projections.schema import column_types, track

NAME = "alerts"
# An alert's delivery: pending|delivered|dead, the attempts made, first and next attempt at.
_DELIVERY_COLUMNS = (
    "status text NOT NULL DEFAULT 'pending'",
    "attempts {int} NOT NULL DEFAULT 0",
    "first_at {ts}",
    "next_attempt_at {ts}",
)
# The deliveries still to attempt, by when they are due (the deliverer's claim).
_DUE = (
    "CREATE INDEX IF NOT EXISTS pr_alerts_due ON pr_alerts (next_attempt_at)"
    " WHERE status = 'pending'"
)

_DDL = (
    "CREATE TABLE IF NOT EXISTS pr_alert_subscriptions (id text PRIMARY KEY, owner text NOT NULL,"
    " rule text NOT NULL, channel text NOT NULL, target text NOT NULL, secret text,"
    " active {bool} NOT NULL, version {int} NOT NULL, created_at {ts}, updated_at {ts},"
    " digest {bool} NOT NULL DEFAULT FALSE)",
    "CREATE TABLE IF NOT EXISTS pr_alert_projects (project_id text PRIMARY KEY,"
    " facts text NOT NULL)",
    # Keyed by subject first: a batch reads the conditions of its subjects only, and a
    # project's conditions (one per subscription that follows it) are inserted side by side
    # in the key, not at one random leaf per subscription.
    "CREATE TABLE IF NOT EXISTS pr_alert_state (subscription_id text NOT NULL,"
    " subject text NOT NULL, active {bool} NOT NULL, value text,"
    " PRIMARY KEY (subject, subscription_id)){state_storage}",
    # a subscription's conditions (a rule changed, a subscription deleted, the counts of
    # the API): new rows come at the end of each subscription's entries (heap order)
    "CREATE INDEX IF NOT EXISTS pr_alert_state_by_subscription ON pr_alert_state (subscription_id)",
    # An alert and its delivery's state: one row (the delivery outbox is pr_alerts itself).
    "CREATE TABLE IF NOT EXISTS pr_alerts (id {uuid} PRIMARY KEY, subscription_id text NOT NULL,"
    " subject text NOT NULL, kind text NOT NULL, metric text NOT NULL, value_before text,"
    " value_after text, figures_before text, figures_after text, cause_position {int} NOT NULL,"
    " cause_stream text NOT NULL, cause_version {int} NOT NULL, cause_type text NOT NULL,"
    " created_at {ts} NOT NULL, " + ", ".join(_DELIVERY_COLUMNS) + ")",
    "CREATE INDEX IF NOT EXISTS pr_alerts_by_subscription ON pr_alerts (subscription_id,"
    " created_at)",
    # What every alert of one event on one subject shares, once (pr_alerts' own figures
    # columns hold the figures of the alerts recorded before this table existed). The key
    # grows with the log position: rows are appended at the index's right edge.
    "CREATE TABLE IF NOT EXISTS pr_alert_figures (cause_position {int} NOT NULL,"
    " subject text NOT NULL, figures_before text, figures_after text,"
    " PRIMARY KEY (cause_position, subject))",
    "CREATE TABLE IF NOT EXISTS alert_deliveries (alert_id {uuid} NOT NULL, attempt {int} NOT NULL,"
    " at {ts} NOT NULL, status text NOT NULL, http_status {int}, error text,"
    " next_attempt_at {ts}, PRIMARY KEY (alert_id, attempt))",
    "CREATE TABLE IF NOT EXISTS alert_digests (owner text NOT NULL, day text NOT NULL,"
    " claimed_at {ts} NOT NULL, status text NOT NULL, messages {int} NOT NULL DEFAULT 0,"
    " error text, PRIMARY KEY (owner, day))",
)


def setup(tx: Tx) -> None:
    """Create the alert tables and the tracking row (idempotent; run under `run_ddl`)."""
    track(tx, NAME)
    types = column_types(tx.dialect)
    # An alert's id: a native uuid on PostgreSQL (16 bytes, a cheaper key to insert than
    # its 36 characters of text), text on SQLite. Readers take it as text (`CAST`).
    types["uuid"] = sql.SQL("uuid" if tx.dialect == "postgres" else "text")
    # Room on each page for the conditions' next versions: an update of a condition (its
    # state or value, no indexed column) then stays on its page (HOT), no new index entry.
    storage = " WITH (fillfactor = 70)" if tx.dialect == "postgres" else ""
    for ddl in _DDL:
        tx.execute(sql.SQL(ddl).format(**types, state_storage=sql.SQL(storage)))
    programme_alerts.setup(tx)
    if not _has_column(tx, "pr_alerts", "status"):  # tables of an older version
        _fold_outbox(tx, types)
    tx.execute(_DUE)
    if tx.dialect == "postgres":
        options = tx.scalar(
            "SELECT array_to_string(reloptions, ',') FROM pg_class"
            " WHERE oid = to_regclass('pr_alert_state')"
        )
        if "fillfactor" not in str(options or ""):  # tables of an older version
            tx.execute("ALTER TABLE pr_alert_state SET (fillfactor = 70)")
    if tx.dialect == "postgres":
        _ids_as_uuid(tx)
        _state_by_subject_first(tx)
    if not _has_column(tx, "pr_alert_subscriptions", "digest"):  # tables of an older version
        tx.execute(
            sql.SQL(
                "ALTER TABLE pr_alert_subscriptions ADD COLUMN digest {bool} NOT NULL DEFAULT FALSE"
            ).format(**types)
        )


def _fold_outbox(tx: Tx, types: dict[str, sql.SQL]) -> None:
    """Move the delivery state of the older `alert_outbox` table into pr_alerts, drop it."""
    for column in _DELIVERY_COLUMNS:
        tx.execute(sql.SQL("ALTER TABLE pr_alerts ADD COLUMN " + column).format(**types))
    if _has_table(tx, "alert_outbox"):
        tx.execute(
            "UPDATE pr_alerts SET status = o.status, attempts = o.attempts,"
            " first_at = o.first_at, next_attempt_at = o.next_attempt_at"
            " FROM alert_outbox o WHERE o.alert_id = pr_alerts.id"
        )
        tx.execute("DROP TABLE alert_outbox")


# The alert id columns that an older version made text (PostgreSQL).
_ALERT_IDS = (("pr_alerts", "id"), ("alert_deliveries", "alert_id"))


def _ids_as_uuid(tx: Tx) -> None:
    """Turn the alert id columns of an older version from text into uuid (their values are
    uuid5 texts: the same ids, read back as the same strings)."""
    for table, column in _ALERT_IDS:
        if _column_type(tx, table, column) == "text":
            tx.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE uuid USING {}::uuid").format(
                    sql.Identifier(table), sql.Identifier(column), sql.Identifier(column)
                )
            )


def _state_by_subject_first(tx: Tx) -> None:
    """Key an older version's `pr_alert_state` (subscription, subject) by subject first,
    which makes its index on the subject alone redundant (PostgreSQL; an older SQLite store
    keeps its key and that index: the same rows, read the same way)."""
    first = tx.scalar(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        " AND a.attnum = i.indkey[0] WHERE i.indrelid = 'pr_alert_state'::regclass"
        " AND i.indisprimary"
    )
    if first == "subscription_id":
        tx.execute(
            "ALTER TABLE pr_alert_state DROP CONSTRAINT pr_alert_state_pkey,"
            " ADD CONSTRAINT pr_alert_state_pkey PRIMARY KEY (subject, subscription_id)"
        )
        tx.execute("DROP INDEX IF EXISTS pr_alert_state_by_subject")


def _has_table(tx: Tx, table: str) -> bool:
    if tx.dialect == "sqlite":
        found = tx.scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = %s", (table,)
        )
    else:
        found = tx.scalar("SELECT to_regclass(%s) IS NOT NULL", (table,))
    return bool(found)


def _has_column(tx: Tx, table: str, column: str) -> bool:
    return _column_type(tx, table, column) is not None


def _column_type(tx: Tx, table: str, column: str) -> str | None:
    """A column's declared type (lower case), or None when the table has no such column."""
    if tx.dialect == "sqlite":
        pragma = sql.SQL("PRAGMA table_info({})").format(sql.Identifier(table))
        return next((str(r["type"]).lower() for r in tx.fetch(pragma) if r["name"] == column), None)
    kind = tx.scalar(
        "SELECT data_type FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND table_name = %s AND column_name = %s",
        (table, column),
    )
    return None if kind is None else str(kind)
