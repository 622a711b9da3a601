"""The SQL of the alerts projection: subscriptions, project facts, conditions and alerts.

Rows are written from the frozen dataclasses of `projections.alert_conditions`: the
columns are the dataclass's field names, so a value cannot land in another column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from psycopg import sql

from domain.subscription import Rule, rule_from_payload
from projections.alert_conditions import AlertRow, ConditionRow
from projections.alert_values import Facts
from projections.db import Tx

Key = tuple[str, str]  # (subscription id, subject)
OUTBOX_COLUMNS = (
    "alert_id",
    "subscription_id",
    "status",
    "attempts",
    "first_at",
    "next_attempt_at",
)


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
    return _conditions(tx.fetch(_CONDITIONS))


def conditions_of_subjects(tx: Tx, subjects: Sequence[str]) -> dict[Key, ConditionRow]:
    """The condition states of these subjects (projects, "portfolio"), every subscription's."""
    found: dict[Key, ConditionRow] = {}
    for start in range(0, len(subjects), CHUNK):
        chunk = subjects[start : start + CHUNK]
        query = sql.SQL(_CONDITIONS + " WHERE subject IN ({})").format(
            sql.SQL(", ").join(sql.Placeholder() * len(chunk))
        )
        found.update(_conditions(tx.fetch(query, chunk)))
    return found


def conditions_of_subscription(tx: Tx, sid: str) -> dict[Key, ConditionRow]:
    """The condition states of one subscription, on every subject."""
    return _conditions(tx.fetch(_CONDITIONS + " WHERE subscription_id = %s", (sid,)))


_CONDITIONS = "SELECT subscription_id, subject, active, value FROM pr_alert_state"
CHUNK = 500  # parameters per IN list


def _conditions(rows: Sequence[dict[str, Any]]) -> dict[Key, ConditionRow]:
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


def save_all_facts(tx: Tx, facts: Mapping[str, Facts]) -> None:
    """Record the facts of several projects (inserted or replaced), one statement."""
    tx.executemany(
        "INSERT INTO pr_alert_projects (project_id, facts) VALUES (%s, %s)"
        " ON CONFLICT (project_id) DO UPDATE SET facts = excluded.facts",
        [(pid, json.dumps(f)) for pid, f in sorted(facts.items())],
    )


def record(tx: Tx, alerts: Sequence[AlertRow], changed: Sequence[ConditionRow]) -> None:
    """A batch's alerts, their pending deliveries and its changed conditions."""
    if alerts:  # insert only: COPY on PostgreSQL
        names = [f.name for f in fields(alerts[0])]
        tx.copy_rows(
            sql.Identifier("pr_alerts"), names, [[getattr(a, n) for n in names] for a in alerts]
        )
        tx.copy_rows(
            sql.Identifier("alert_outbox"),
            OUTBOX_COLUMNS,
            [(a.id, a.subscription_id, "pending", 0, a.created_at, a.created_at) for a in alerts],
        )
    _insert(
        tx,
        "pr_alert_state",
        changed,
        " ON CONFLICT (subscription_id, subject)"
        " DO UPDATE SET active = excluded.active, value = excluded.value",
    )
