"""The SQL of the alerts projection: subscriptions, project facts, conditions and alerts.

Rows are written from the frozen dataclasses of `projections.alert_conditions`: the
columns are the dataclass's field names, so a value cannot land in another column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from psycopg import sql

from domain.subscription import Rule, rule_from_payload
from projections import outbox
from projections.alert_conditions import AlertRow, ConditionRow
from projections.alert_values import Facts
from projections.db import Tx

Key = tuple[str, str]  # (subscription id, subject)


@dataclass(frozen=True)
class SubscriptionRow:
    """A subscription as the projection keeps it (its rule and channel as recorded)."""

    id: str
    owner: str
    rule: str
    channel: str
    target: str
    secret: str | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    digest: bool


def _insert(tx: Tx, table: str, rows: Sequence[Any], on_conflict: str = "") -> None:
    """Insert dataclass rows into `table`, one column per field, by name."""
    if not rows:
        return
    names = [f.name for f in fields(rows[0])]
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}){}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.Placeholder() * len(names)),
        sql.SQL(on_conflict),
    )
    tx.executemany(query, [[getattr(row, name) for name in names] for row in rows])


def active_rules(tx: Tx) -> dict[str, Rule]:
    """The rule of every live subscription, by subscription id."""
    rows = tx.fetch("SELECT id, rule FROM pr_alert_subscriptions WHERE active")
    return {r["id"]: rule_from_payload(json.loads(r["rule"])) for r in rows}


def project_facts(tx: Tx) -> dict[str, Facts]:
    """What the rules last read of every project, by project id."""
    rows = tx.fetch("SELECT project_id, facts FROM pr_alert_projects")
    return {r["project_id"]: json.loads(r["facts"]) for r in rows}


def conditions(tx: Tx) -> dict[Key, ConditionRow]:
    """Every condition state, by (subscription id, subject)."""
    rows = tx.fetch("SELECT subscription_id, subject, active, value FROM pr_alert_state")
    return {
        (r["subscription_id"], r["subject"]): ConditionRow(
            r["subscription_id"], r["subject"], bool(r["active"]), r["value"]
        )
        for r in rows
    }


def add_subscription(tx: Tx, row: SubscriptionRow) -> None:
    _insert(tx, "pr_alert_subscriptions", [row])


def change_rule(tx: Tx, sid: str, rule: dict[str, Any], version: int, at: datetime) -> None:
    tx.execute(
        "UPDATE pr_alert_subscriptions SET rule = %s, version = %s, updated_at = %s WHERE id = %s",
        (json.dumps(rule), version, at, sid),
    )


def change_channel(tx: Tx, sid: str, channel: dict[str, Any], version: int, at: datetime) -> None:
    tx.execute(
        "UPDATE pr_alert_subscriptions SET channel = %s, target = %s, secret = %s,"
        " digest = %s, version = %s, updated_at = %s WHERE id = %s",
        (
            channel["channel"],
            channel["target"],
            channel.get("secret"),
            bool(channel.get("digest", False)),
            version,
            at,
            sid,
        ),
    )


def delete_subscription(tx: Tx, sid: str, version: int, at: datetime) -> None:
    """Mark a subscription deleted (its alerts stay readable) and forget its conditions."""
    tx.execute(
        "UPDATE pr_alert_subscriptions SET active = %s, version = %s, updated_at = %s"
        " WHERE id = %s",
        (False, version, at, sid),
    )
    tx.execute("DELETE FROM pr_alert_state WHERE subscription_id = %s", (sid,))


def save_facts(tx: Tx, project_id: str, facts: Facts, *, known: bool) -> None:
    """Record a project's facts (`known`: it has a row already)."""
    text = json.dumps(facts)
    if known:
        tx.execute(
            "UPDATE pr_alert_projects SET facts = %s WHERE project_id = %s", (text, project_id)
        )
    else:
        tx.execute(
            "INSERT INTO pr_alert_projects (project_id, facts) VALUES (%s, %s)", (project_id, text)
        )


def record(tx: Tx, alerts: Sequence[AlertRow], changed: Sequence[ConditionRow]) -> None:
    """A batch's alerts, their pending deliveries and its changed conditions."""
    _insert(tx, "pr_alerts", alerts)
    outbox.add(
        tx, [(a.id, a.subscription_id, "pending", 0, a.created_at, a.created_at) for a in alerts]
    )
    _insert(
        tx,
        "pr_alert_state",
        changed,
        " ON CONFLICT (subscription_id, subject)"
        " DO UPDATE SET active = excluded.active, value = excluded.value",
    )
