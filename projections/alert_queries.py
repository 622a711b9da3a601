"""Read queries of the alerts projection: subscriptions, alerts and delivery attempts."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import sql

from domain.subscription import show_threshold
from projections.db import Row, Tx, as_ts

# An alert row: pr_alerts, with its figures from pr_alert_figures (once per event and
# subject) or, for an alert recorded before that table existed, from its own columns.
ALERT_FIELDS = sql.SQL(
    # the id as text on either store (a uuid column on PostgreSQL): the same strings
    "CAST(a.id AS text) AS id, a.subscription_id, a.subject, a.kind, a.metric,"
    " a.value_before, a.value_after,"
    " COALESCE(f.figures_before, a.figures_before) AS figures_before,"
    " COALESCE(f.figures_after, a.figures_after) AS figures_after,"
    " a.cause_position, a.cause_stream, a.cause_version, a.cause_type, a.created_at"
)
ALERTS_FROM = sql.SQL(
    "pr_alerts a LEFT JOIN pr_alert_figures f"
    " ON f.cause_position = a.cause_position AND f.subject = a.subject"
)


def subscription_rows(tx: Tx, owner: str | None) -> list[Row]:
    """The live subscriptions (of `owner`, or all), oldest first."""
    if owner is None:
        return tx.fetch("SELECT * FROM pr_alert_subscriptions WHERE active ORDER BY created_at")
    return tx.fetch(
        "SELECT * FROM pr_alert_subscriptions WHERE active AND owner = %s ORDER BY created_at",
        (owner,),
    )


def subscription_owner(tx: Tx, subscription_id: str) -> str | None:
    """Who owns a subscription known to the projection (deleted ones too)."""
    value = tx.scalar("SELECT owner FROM pr_alert_subscriptions WHERE id = %s", (subscription_id,))
    return None if value is None else str(value)


def shown(metric: str, value: str | None) -> str | None:
    """A stored value as the API shows it (a rating rank as its level)."""
    return None if value is None else show_threshold(metric, Decimal(value))


def alert_record(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "subscription_id": row["subscription_id"],
        "subject": row["subject"],
        "kind": row["kind"],
        "metric": row["metric"],
        "value_before": shown(row["metric"], row["value_before"]),
        "value_after": shown(row["metric"], row["value_after"]),
        "figures_before": json.loads(row["figures_before"] or "null"),
        "figures_after": json.loads(row["figures_after"] or "null"),
        "created_at": as_ts(row["created_at"]),
        "cause": {
            "position": int(row["cause_position"]),
            "stream": row["cause_stream"],
            "version": int(row["cause_version"]),
            "type": row["cause_type"],
        },
        "delivery": row.get("delivery"),
    }


def alerts(
    tx: Tx,
    *,
    owner: str | None,
    subscription: str | None = None,
    project: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Alerts, oldest first, filtered; `owner` limits them to one subscriber's."""
    where = ["1 = 1"]
    params: list[Any] = []
    for clause, value in (
        ("s.owner = %s", owner),
        ("a.subscription_id = %s", subscription),
        ("a.subject = %s", project),
        ("a.created_at >= %s", start),
        ("a.created_at < %s", end),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    query = sql.SQL(
        "SELECT {}, a.status AS delivery FROM {}"
        " JOIN pr_alert_subscriptions s ON s.id = a.subscription_id"
        " WHERE {} ORDER BY a.cause_position, a.id LIMIT %s"
    ).format(ALERT_FIELDS, ALERTS_FROM, sql.SQL(" AND ").join(sql.SQL(w) for w in where))
    return [alert_record(r) for r in tx.fetch(query, [*params, limit])]


def alert_subscription(tx: Tx, alert_id: str) -> str | None:
    value = tx.scalar("SELECT subscription_id FROM pr_alerts WHERE id = %s", (alert_id,))
    return None if value is None else str(value)


def deliveries(tx: Tx, subscription_id: str) -> list[Row]:
    """Every delivery attempt of a subscription's alerts, in order."""
    rows = tx.fetch(
        "SELECT CAST(d.alert_id AS text) AS alert_id, d.attempt, d.at, d.status,"
        " d.http_status, d.error, d.next_attempt_at"
        " FROM alert_deliveries d JOIN pr_alerts a ON a.id = d.alert_id"
        " WHERE a.subscription_id = %s ORDER BY a.cause_position, d.alert_id, d.attempt",
        (subscription_id,),
    )
    for r in rows:
        r["at"] = as_ts(r["at"])
        r["next_attempt_at"] = as_ts(r["next_attempt_at"])
    return rows


def active_conditions(tx: Tx, subscription_ids: list[str]) -> dict[str, int]:
    """How many subjects (projects, or the portfolio) are over each subscription's threshold."""
    if not subscription_ids:
        return {}
    marks = sql.SQL(", ").join(sql.Placeholder() * len(subscription_ids))
    rows = tx.fetch(
        sql.SQL(
            "SELECT subscription_id, count(*) AS n FROM pr_alert_state"
            " WHERE active AND subscription_id IN ({}) GROUP BY subscription_id"
        ).format(marks),
        subscription_ids,
    )
    return {str(r["subscription_id"]): int(r["n"]) for r in rows}
