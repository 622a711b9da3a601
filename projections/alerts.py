"""The alerts projection: evaluate the subscriptions' rules, record one alert per crossing.

Caught up by the one catch-up loop under its own tracking row ("alerts"). For each project
event it folds the project's state from every event of its stream recorded up to and
including that one (no `as_of` limit: the latest state as known then), recomputes the
value of each rule that covers the project (or the portfolio), and records an alert row
(and its delivery outbox row) only when the rule's condition flips. The condition state,
the alerts, the outbox and the tracking position commit in one transaction: exactly once
per event. See docs/alerts.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification
from psycopg import sql

from domain.subscription import PORTFOLIO_METRICS, Rule, Subscription, rule_from_payload
from projections import outbox, programme_alerts
from projections.alert_values import Facts, covers, portfolio_value, project_facts, project_value
from projections.db import Tx
from projections.schema import column_types, track
from projections.state import fold

NAME = "alerts"
PROJECT_PREFIX = "domain.project:Project."
SUBSCRIPTION_PREFIX = "domain.subscription:Subscription."
PORTFOLIO = "portfolio"
ALERT_NS = UUID("6f1c3c57-9d7e-4c55-9a51-2d0f6f3e8a11")
LoadEvents = Callable[[UUID, int], list[Any]]

_DDL = (
    "CREATE TABLE IF NOT EXISTS pr_alert_subscriptions (id text PRIMARY KEY, owner text NOT NULL,"
    " rule text NOT NULL, channel text NOT NULL, target text NOT NULL, secret text,"
    " active {bool} NOT NULL, version {int} NOT NULL, created_at {ts}, updated_at {ts},"
    " digest {bool} NOT NULL DEFAULT FALSE)",
    "CREATE TABLE IF NOT EXISTS pr_alert_projects (project_id text PRIMARY KEY,"
    " facts text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pr_alert_state (subscription_id text NOT NULL,"
    " subject text NOT NULL, active {bool} NOT NULL, value text,"
    " PRIMARY KEY (subscription_id, subject))",
    "CREATE TABLE IF NOT EXISTS pr_alerts (id text PRIMARY KEY, subscription_id text NOT NULL,"
    " subject text NOT NULL, kind text NOT NULL, metric text NOT NULL, value_before text,"
    " value_after text, figures_before text, figures_after text, cause_position {int} NOT NULL,"
    " cause_stream text NOT NULL, cause_version {int} NOT NULL, cause_type text NOT NULL,"
    " created_at {ts} NOT NULL)",
    "CREATE INDEX IF NOT EXISTS pr_alerts_by_subscription ON pr_alerts (subscription_id,"
    " created_at)",
    "CREATE TABLE IF NOT EXISTS alert_outbox (alert_id text PRIMARY KEY,"
    " subscription_id text NOT NULL, status text NOT NULL, attempts {int} NOT NULL,"
    " first_at {ts} NOT NULL, next_attempt_at {ts} NOT NULL)",
    "CREATE INDEX IF NOT EXISTS alert_outbox_due ON alert_outbox (status, next_attempt_at)",
    "CREATE TABLE IF NOT EXISTS alert_deliveries (alert_id text NOT NULL, attempt {int} NOT NULL,"
    " at {ts} NOT NULL, status text NOT NULL, http_status {int}, error text,"
    " next_attempt_at {ts}, PRIMARY KEY (alert_id, attempt))",
    "CREATE TABLE IF NOT EXISTS alert_digests (owner text NOT NULL, day text NOT NULL,"
    " claimed_at {ts} NOT NULL, status text NOT NULL, messages {int} NOT NULL DEFAULT 0,"
    " error text, PRIMARY KEY (owner, day))",
)


def setup(tx: Tx) -> None:
    """Create the alert tables and the tracking row (idempotent)."""
    track(tx, NAME)
    types = column_types(tx.dialect)
    for ddl in _DDL:
        tx.execute(sql.SQL(ddl).format(**types))
    programme_alerts.setup(tx)
    if not _has_column(tx, "pr_alert_subscriptions", "digest"):  # tables of an older version
        tx.execute(
            sql.SQL(
                "ALTER TABLE pr_alert_subscriptions ADD COLUMN digest {bool} NOT NULL DEFAULT FALSE"
            ).format(**types)
        )


def _has_column(tx: Tx, table: str, column: str) -> bool:
    if tx.dialect == "sqlite":
        return any(r["name"] == column for r in tx.fetch(f"PRAGMA table_info({table})"))
    return bool(
        tx.scalar(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema ="
            " current_schema() AND table_name = %s AND column_name = %s",
            (table, column),
        )
    )


class AlertsProjector:
    """Keeps subscriptions, project facts and condition states; records alerts on flips."""

    def __init__(self, mapper: Mapper[UUID], load_events: LoadEvents) -> None:
        self.mapper = mapper
        self.load_events = load_events
        self.subs: dict[str, Rule] | None = None
        self.projects: dict[str, Facts] | None = None
        self.history: dict[str, list[Any]] = {}
        # (subscription, subject) -> (active, value): read once, written once per batch
        self.states: dict[tuple[str, str], tuple[bool, str | None]] | None = None
        self.dirty: dict[tuple[str, str], tuple[bool, str | None]] = {}
        self.new_alerts: list[tuple[Any, ...]] = []
        self.new_outbox: list[outbox.OutboxRow] = []

    def _load(self, tx: Tx) -> tuple[dict[str, Rule], dict[str, Facts]]:
        if self.subs is None or self.projects is None or self.states is None:
            rows = tx.fetch("SELECT id, rule FROM pr_alert_subscriptions WHERE active")
            self.subs = {r["id"]: rule_from_payload(json.loads(r["rule"])) for r in rows}
            rows = tx.fetch("SELECT project_id, facts FROM pr_alert_projects")
            self.projects = {r["project_id"]: json.loads(r["facts"]) for r in rows}
            rows = tx.fetch("SELECT subscription_id, subject, active, value FROM pr_alert_state")
            self.states = {
                (r["subscription_id"], r["subject"]): (bool(r["active"]), r["value"]) for r in rows
            }
        return self.subs, self.projects

    def process(self, tx: Tx, batch: Sequence[Notification]) -> None:
        subs, projects = self._load(tx)
        self.dirty, self.new_alerts, self.new_outbox = {}, [], []
        for n in batch:
            if n.topic.startswith(SUBSCRIPTION_PREFIX):
                self._subscription(tx, n, subs, projects)
            elif n.topic.startswith(PROJECT_PREFIX):
                self._project(tx, n, subs, projects)
            elif n.topic.startswith(programme_alerts.PROGRAMME_PREFIX):
                programme_alerts.on_event(self, tx, n, subs)
        # The batch's alerts, their outbox rows and the changed condition states, written
        # in the batch's transaction (with the tracking position): exactly once per event.
        tx.executemany(
            "INSERT INTO pr_alerts (id, subscription_id, subject, kind, metric, value_before,"
            " value_after, figures_before, figures_after, cause_position, cause_stream,"
            " cause_version, cause_type, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            self.new_alerts,
        )
        outbox.add(tx, self.new_outbox)
        if self.dirty:
            tx.executemany(
                "INSERT INTO pr_alert_state (subscription_id, subject, active, value)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (subscription_id, subject)"
                " DO UPDATE SET active = excluded.active, value = excluded.value",
                [(sid, subject, a, v) for (sid, subject), (a, v) in sorted(self.dirty.items())],
            )

    # -- subscription events -----------------------------------------------------------------
    def _subscription(
        self, tx: Tx, n: Notification, subs: dict[str, Rule], projects: dict[str, Facts]
    ) -> None:
        event: Any = self.mapper.to_domain_event(n)
        sid = str(n.originator_id)
        if isinstance(event, Subscription.Created):
            ch = event.channel
            tx.execute(
                "INSERT INTO pr_alert_subscriptions (id, owner, rule, channel, target, secret,"
                " active, version, created_at, updated_at, digest)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    sid,
                    event.owner,
                    json.dumps(event.rule),
                    ch["channel"],
                    ch["target"],
                    ch.get("secret"),
                    True,
                    n.originator_version,
                    event.timestamp,
                    event.timestamp,
                    bool(ch.get("digest", False)),
                ),
            )
            subs[sid] = rule_from_payload(event.rule)
        elif isinstance(event, Subscription.RuleChanged):
            tx.execute(
                "UPDATE pr_alert_subscriptions SET rule = %s, version = %s, updated_at = %s"
                " WHERE id = %s",
                (json.dumps(event.rule), n.originator_version, event.timestamp, sid),
            )
            subs[sid] = rule_from_payload(event.rule)
        elif isinstance(event, Subscription.ChannelChanged):
            ch = event.channel
            tx.execute(
                "UPDATE pr_alert_subscriptions SET channel = %s, target = %s, secret = %s,"
                " digest = %s, version = %s, updated_at = %s WHERE id = %s",
                (
                    ch["channel"],
                    ch["target"],
                    ch.get("secret"),
                    bool(ch.get("digest", False)),
                    n.originator_version,
                    event.timestamp,
                    sid,
                ),
            )
            return
        elif isinstance(event, Subscription.Deleted):
            tx.execute(
                "UPDATE pr_alert_subscriptions SET active = %s, version = %s, updated_at = %s"
                " WHERE id = %s",
                (False, n.originator_version, event.timestamp, sid),
            )
            tx.execute("DELETE FROM pr_alert_state WHERE subscription_id = %s", (sid,))
            for cache in (self.states or {}, self.dirty):
                for key in [k for k in cache if k[0] == sid]:
                    del cache[key]
            subs.pop(sid, None)
            return
        else:
            return
        # A new or changed rule is evaluated at once on what is known (cause: this event).
        rule = subs[sid]
        if programme_alerts.follows(rule):
            programme_alerts.on_rule(self, tx, n, sid, rule)
        elif rule.metric in PORTFOLIO_METRICS:
            value = portfolio_value(rule.metric, projects.values())
            self._evaluate(tx, n, sid, rule, PORTFOLIO, value, None, None)
        else:
            for pid, facts in projects.items():
                if covers(rule, pid, facts):
                    self._evaluate(tx, n, sid, rule, pid, project_value(rule, facts), facts, facts)

    # -- project events ----------------------------------------------------------------------
    def _project(
        self, tx: Tx, n: Notification, subs: dict[str, Rule], projects: dict[str, Facts]
    ) -> None:
        pid = str(n.originator_id)
        events = self.history.get(pid)
        if events is None or (events and events[-1].originator_version != n.originator_version - 1):
            events = self.load_events(UUID(pid), n.originator_version - 1)
        events.append(self.mapper.to_domain_event(n))
        if len(self.history) > 5000:
            self.history.clear()
        self.history[pid] = events
        state = fold(events)
        if state is None:
            return
        before = projects.get(pid)
        after = project_facts(state)
        if after == before:
            return
        old_values = {m: portfolio_value(m, projects.values()) for m in PORTFOLIO_METRICS}
        projects[pid] = after
        text = json.dumps(after)
        if before is None:
            tx.execute(
                "INSERT INTO pr_alert_projects (project_id, facts) VALUES (%s, %s)", (pid, text)
            )
        else:
            tx.execute("UPDATE pr_alert_projects SET facts = %s WHERE project_id = %s", (text, pid))
        for sid, rule in sorted(subs.items()):
            if rule.metric in PORTFOLIO_METRICS:
                new = portfolio_value(rule.metric, projects.values())
                if new != old_values[rule.metric]:
                    self._evaluate(tx, n, sid, rule, PORTFOLIO, new, None, None)
            elif covers(rule, pid, after) or (before is not None and covers(rule, pid, before)):
                self._evaluate(tx, n, sid, rule, pid, project_value(rule, after), before, after)

    # -- conditions ----------------------------------------------------------------------------
    def _evaluate(
        self,
        tx: Tx,
        n: Notification,
        sid: str,
        rule: Rule,
        subject: str,
        value: Decimal | None,
        before: Facts | None,
        after: Facts | None,
    ) -> None:
        assert self.states is not None
        key = (sid, subject)
        known = self.states.get(key)
        active, previous = known if known is not None else (False, None)
        new_active = rule.next_active(active, value)
        stored = previous if value is None else str(value)
        if known is None or new_active != active or stored != previous:
            self.states[key] = self.dirty[key] = (new_active, stored)
        if new_active == active:
            return
        alert_id = str(uuid.uuid5(ALERT_NS, f"{sid}:{subject}:{n.id}"))
        now = datetime.now(UTC)
        self.new_alerts.append(
            (
                alert_id,
                sid,
                subject,
                "raised" if new_active else "cleared",
                rule.metric,
                previous,
                stored,
                json.dumps(before),
                json.dumps(after),
                n.id,
                str(n.originator_id),
                n.originator_version,
                n.topic.rsplit(".", 1)[-1],
                now,
            )
        )
        self.new_outbox.append((alert_id, sid, "pending", 0, now, now))
