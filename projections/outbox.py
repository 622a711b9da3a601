"""The alert deliveries outbox: each alert's row, claimed, attempted, recorded.

The alerts projection writes each alert pending, in its batch's transaction: pr_alerts holds
its delivery's status, attempts and next attempt (the outbox is the alerts table). The deliverer
claims the due rows with a compare-and-set of their attempt counter (and `FOR UPDATE SKIP
LOCKED` on PostgreSQL), so two workers never send the same attempt twice; a claimed row is
leased: a worker killed during a delivery leaves it due again when the lease ends. Every
attempt is a row of `alert_deliveries`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from psycopg import sql

from projections.alert_queries import ALERT_FIELDS, ALERTS_FROM
from projections.db import Database, Row, as_ts


def claim_due(
    db: Database, now: datetime, limit: int, lease: timedelta
) -> list[tuple[str, int, datetime]]:
    """Claim the due rows for one attempt each: (alert id, attempt number, first attempt at)."""
    lock = sql.SQL(" FOR UPDATE SKIP LOCKED" if db.dialect == "postgres" else "")
    claimed: list[tuple[str, int, datetime]] = []
    with db.transaction() as tx:
        rows = tx.fetch(
            sql.SQL(
                "SELECT CAST(id AS text) AS alert_id, attempts, first_at FROM pr_alerts"
                " WHERE status = 'pending' AND next_attempt_at <= %s"
                " ORDER BY next_attempt_at LIMIT %s{}"
            ).format(lock),
            (now, limit),
        )
        for r in rows:
            attempt = int(r["attempts"]) + 1
            if tx.execute(
                "UPDATE pr_alerts SET attempts = %s, next_attempt_at = %s"
                " WHERE id = %s AND attempts = %s AND status = 'pending'",
                (attempt, now + lease, r["alert_id"], attempt - 1),
            ):
                # An attempt still "sending" was never reported: its worker died.
                tx.execute(
                    "UPDATE alert_deliveries SET status = 'lost', error = %s"
                    " WHERE alert_id = %s AND status = 'sending'",
                    ("no outcome was recorded within the lease (worker lost)", r["alert_id"]),
                )
                tx.execute(
                    "INSERT INTO alert_deliveries (alert_id, attempt, at, status,"
                    " next_attempt_at) VALUES (%s, %s, %s, 'sending', %s)",
                    (r["alert_id"], attempt, now, now + lease),
                )
                claimed.append((r["alert_id"], attempt, as_ts(r["first_at"]) or now))
    return claimed


def alert_and_subscription(db: Database, alert_id: str) -> tuple[Row | None, Row | None]:
    """The alert row and its subscription's row (None where gone)."""
    with db.transaction(write=False) as tx:
        query = sql.SQL("SELECT {} FROM {} WHERE a.id = %s").format(ALERT_FIELDS, ALERTS_FROM)
        alert = tx.fetchone(query, (alert_id,))
        if alert is None:
            return None, None
        sub = tx.fetchone(
            "SELECT * FROM pr_alert_subscriptions WHERE id = %s", (alert["subscription_id"],)
        )
    return alert, sub


def record_attempt(
    db: Database,
    alert_id: str,
    attempt: int,
    now: datetime,
    *,
    ok: bool,
    http_status: int | None,
    error: str | None,
    next_at: datetime | None,
) -> str:
    """Record how an attempt ended; return the row's status (delivered, pending or dead)."""
    status = "delivered" if ok else ("pending" if next_at is not None else "dead")
    logged = "ok" if ok else ("failed" if next_at is not None else "dead")
    with db.transaction() as tx:
        tx.execute(
            "UPDATE alert_deliveries SET status = %s, http_status = %s, error = %s,"
            " next_attempt_at = %s WHERE alert_id = %s AND attempt = %s",
            (logged, http_status, error, next_at, alert_id, attempt),
        )
        tx.execute(
            "UPDATE pr_alerts SET status = %s, next_attempt_at = %s"
            " WHERE id = %s AND attempts = %s",
            (status, next_at or now, alert_id, attempt),
        )
    return status


def redeliver(db: Database, alert_id: str, now: datetime) -> bool:
    """Make an alert due again now, with a fresh retry window; False if unknown."""
    with db.transaction() as tx:
        return bool(
            tx.execute(
                "UPDATE pr_alerts SET status = 'pending', first_at = %s, next_attempt_at = %s"
                " WHERE id = %s",
                (now, now, alert_id),
            )
        )


def digest_rows(db: Database, start: datetime, end: datetime) -> tuple[list[Row], list[Row]]:
    """The active digest subscriptions, and their alerts created in [start, end)."""
    with db.transaction(write=False) as tx:
        subs = tx.fetch("SELECT * FROM pr_alert_subscriptions WHERE active AND digest")
        alerts = tx.fetch(
            sql.SQL(
                "SELECT {} FROM {} JOIN pr_alert_subscriptions s"
                " ON s.id = a.subscription_id WHERE s.active AND s.digest"
                " AND a.created_at >= %s AND a.created_at < %s"
            ).format(ALERT_FIELDS, ALERTS_FROM),
            (start, end),
        )
    return subs, alerts


def claim_digest(db: Database, owner: str, day: str, now: datetime) -> bool:
    """Claim the digest of (owner, day): True once, False ever after."""
    with db.transaction() as tx:
        return bool(
            tx.execute(
                "INSERT INTO alert_digests (owner, day, claimed_at, status) VALUES"
                " (%s, %s, %s, 'sending') ON CONFLICT (owner, day) DO NOTHING",
                (owner, day, now),
            )
        )


def record_digest(db: Database, owner: str, day: str, *, sent: int, errors: Sequence[str]) -> None:
    """Record how a claimed digest went: sent, or failed with its errors."""
    with db.transaction() as tx:
        tx.execute(
            "UPDATE alert_digests SET status = %s, messages = %s, error = %s"
            " WHERE owner = %s AND day = %s",
            ("failed" if errors else "sent", sent, "; ".join(errors)[:1000] or None, owner, day),
        )
