"""The alerts projector as it was before incremental evaluation: the reference of the tests.

For each project event it refolds the project's history, checks every rule on the new facts
and recomputes the portfolio metrics over every project; it reads every condition state.
`tests/unit/test_alert_incremental.py` checks the incremental projector against it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification

from domain.project import Project
from domain.subscription import Rule, Subscription, rule_from_payload
from projections import alert_store
from projections.alert_conditions import (
    AlertRow,
    Cause,
    Check,
    ConditionRow,
    evaluate,
    project_checks,
    rule_checks,
)
from projections.alert_store import Key, SubscriptionRow
from projections.alert_values import Facts, project_facts
from projections.db import Tx
from projections.state import fold

LoadEvents = Callable[[UUID, int], list[Any]]
HISTORY_LIMIT = 5000  # projects whose events are kept in memory between events


class ReferenceAlertsProjector:
    """Keeps subscriptions, project facts and condition states; records alerts on flips."""

    def __init__(self, mapper: Mapper[UUID], load_events: LoadEvents) -> None:
        self.mapper = mapper
        self.load_events = load_events
        self.rules: dict[str, Rule] = {}
        self.projects: dict[str, Facts] = {}
        self.states: dict[Key, ConditionRow] = {}
        self.loaded = False
        self.history: dict[str, list[Any]] = {}
        self.dirty: dict[Key, ConditionRow] = {}  # read once, written once per batch
        self.new_alerts: list[AlertRow] = []

    def process(self, tx: Tx, batch: Sequence[Notification]) -> None:
        if not self.loaded:
            self.rules = alert_store.active_rules(tx)
            self.projects = alert_store.project_facts(tx)
            self.states = alert_store.conditions(tx)
            self.loaded = True
        self.dirty, self.new_alerts = {}, []
        for n in batch:
            event = self.mapper.to_domain_event(n)
            match event:
                case Subscription.Created() | Subscription.Event():
                    self._subscription(tx, n, event)
                case Project.Registered() | Project.Event():
                    self._project(tx, n, event)
        # The batch's alerts (pending delivery) and the changed condition states, written
        # in the batch's transaction (with the tracking position): exactly once per event.
        alert_store.record(tx, self.new_alerts, [self.dirty[k] for k in sorted(self.dirty)])

    def _subscription(self, tx: Tx, n: Notification, event: Any) -> None:
        sid, version = str(n.originator_id), n.originator_version
        match event:
            case Subscription.Created():
                channel = event.channel
                alert_store.add_subscription(
                    tx,
                    SubscriptionRow(
                        id=sid,
                        owner=event.owner,
                        rule=json.dumps(event.rule),
                        channel=channel["channel"],
                        target=channel["target"],
                        secret=channel.get("secret"),
                        active=True,
                        version=version,
                        created_at=event.timestamp,
                        updated_at=event.timestamp,
                        digest=bool(channel.get("digest", False)),
                    ),
                )
            case Subscription.RuleChanged():
                alert_store.change_rule(tx, sid, event.rule, version, event.timestamp)
            case Subscription.ChannelChanged():
                alert_store.change_channel(tx, sid, event.channel, version, event.timestamp)
                return
            case Subscription.Deleted():
                alert_store.delete_subscription(tx, sid, version, event.timestamp)
                for cache in (self.states, self.dirty):
                    for key in [k for k in cache if k[0] == sid]:
                        del cache[key]
                self.rules.pop(sid, None)
                return
            case _:
                return
        # A new or changed rule is evaluated at once on what is known (cause: this event).
        rule = self.rules[sid] = rule_from_payload(event.rule)
        self._apply(rule_checks(sid, rule, self.projects), _cause(n, event))

    def _project(self, tx: Tx, n: Notification, event: Any) -> None:
        pid = str(n.originator_id)
        events = self.history.get(pid)
        if events is None or (events and events[-1].originator_version != n.originator_version - 1):
            events = self.load_events(UUID(pid), n.originator_version - 1)
        events.append(event)
        if len(self.history) > HISTORY_LIMIT:
            self.history.clear()
        self.history[pid] = events
        state = fold(events)
        if state is None:
            return
        before = self.projects.get(pid)
        after = project_facts(state)
        if after == before:
            return
        checks = project_checks(self.rules, self.projects, pid, after)
        self.projects[pid] = after
        alert_store.save_facts(tx, pid, after, known=before is not None)
        self._apply(checks, _cause(n, event))

    def _apply(self, checks: list[Check], cause: Cause) -> None:
        """Evaluate each check on the known condition; keep what changed for the batch."""
        now = datetime.now(UTC)
        for check in checks:
            key = (check.subscription_id, check.subject)
            transition = evaluate(check, self.states.get(key), cause, now)
            if transition.condition is not None:
                self.states[key] = self.dirty[key] = transition.condition
            if transition.alert is not None:
                self.new_alerts.append(transition.alert)


def _cause(n: Notification, event: Any) -> Cause:
    return Cause(n.id, str(n.originator_id), n.originator_version, type(event).__name__)
