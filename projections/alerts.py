"""The alerts projection: evaluate the subscriptions' rules, record one alert per crossing.

Caught up by the one catch-up loop under its own tracking row ("alerts"). For each project
event it brings the project's state up to that event (no `as_of` limit: the latest state as
known then), evaluates the rules whose value or scope that changed (or the portfolio
rules whose metric moved), and records an alert row (its delivery pending; its figures once
per event and subject) only when a rule's condition flips. The condition state, the alerts
and the tracking position commit in one transaction: exactly once per event. See
docs/alerts.md.

Incremental and warm: each project's state is kept and the event applied to it (refolded
from the store only for a backdated event or a project not seen yet), the portfolio metrics
are running sums, the rules are indexed by scope and metric (`alert_index`), and only the
batch's condition states are read. A projector stays warm across catch-ups (`resume`) as
long as the tracking position is the one it left.

The projector composes four modules: what it reads and writes (`alert_store`), the pure
evaluation (`alert_conditions`, `alert_index`) and the tables (`alert_schema`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification

from domain.programme import FundingProgramme
from domain.project import Project
from domain.subscription import PORTFOLIO_METRICS, Rule, Subscription, rule_from_payload
from domain.values import canonical_ministry
from projections import alert_store, programme_alerts
from projections.alert_conditions import (
    PORTFOLIO,
    AlertShared,
    AlertValues,
    Cause,
    Check,
    alert_id,
    rule_checks,
)
from projections.alert_index import PortfolioSums, RuleChecks, RuleIndex
from projections.alert_schema import NAME, setup
from projections.alert_store import Key, SubscriptionRow
from projections.alert_values import Facts, project_facts
from projections.db import Tx
from projections.state import ProjectState, fold, sort_date

__all__ = ["NAME", "AlertsProjector", "setup"]

LoadEvents = Callable[[UUID, int], list[Any]]
LoadStreams = Callable[[Mapping[UUID, int]], Mapping[UUID, list[Any]]]  # each up to a version
Condition = tuple[bool, str | None]  # a condition state: raised or not, the last known value


@dataclass
class Latest:
    """A project's latest state as known, and the latest effective date folded into it."""

    state: ProjectState
    registered_on: date
    last: date


# A batch of at least this many events sends its alerts to PostgreSQL while it evaluates,
# a piece of at least STREAM_CHUNK alerts at a time (smaller ones: one write at the end).
STREAM_MIN_EVENTS = 200
STREAM_CHUNK = 1_000


class AlertsProjector:
    """Keeps the rules, each project's state and facts warm; records alerts on flips."""

    def __init__(
        self,
        mapper: Mapper[UUID],
        load_events: LoadEvents,
        stable: Callable[[str], str] = canonical_ministry,
        reference: Callable[[], tuple[Callable[[str], str], object]] | None = None,
        load_streams: LoadStreams | None = None,
    ) -> None:
        self.mapper = mapper
        self.load_events = load_events
        self.load_streams = load_streams  # several streams in one read (else one by one)
        self.stable = stable  # a ministry code -> its stable code (the reference)
        self.reference = reference  # the reference as recorded now: (stable, codes)
        self.position: int | None = None  # the last position applied; None: not warm
        self.stream: alert_store.AlertStream | None = None  # a batch's alerts being sent
        self.reset()

    def use_reference(self, stable: Callable[[str], str], codes: object) -> None:
        """Resolve ministry codes with `stable` (the reference `codes` as recorded); a changed
        reference re-indexes the rules from the tables."""
        if codes != getattr(self, "codes", None):
            self.stable, self.codes = stable, codes
            self.reset()

    def reset(self) -> None:
        """Forget everything: the next batch reads the rules and facts again."""
        self.position = None
        self.loaded = False
        self.index = RuleIndex(stable=self.stable)
        self.programme_rules: dict[str, Rule] = {}
        self.projects: dict[str, Facts] = {}
        self.sums = PortfolioSums()
        self.latest: dict[str, Latest] = {}

    def resume(self, position: int) -> None:
        """Stay warm only if `position` (the tracking position) is where this one left off."""
        if position != self.position:
            self.reset()

    def process(self, tx: Tx, batch: Sequence[Notification]) -> None:
        if self.reference is not None:
            self.use_reference(*self.reference())  # an amended reference re-indexes the rules
        applied, self.position = self.position, None  # not warm until the batch is through
        if not self.loaded:
            rules = alert_store.active_rules(tx)
            self.programme_rules = {k: r for k, r in rules.items() if programme_alerts.follows(r)}
            projects_rules = {k: r for k, r in rules.items() if k not in self.programme_rules}
            self.index = RuleIndex(projects_rules, self.stable)
            self.projects = alert_store.project_facts(tx)
            self.sums = PortfolioSums(self.projects.values())
            self.latest = {}
            self.loaded = True
        subjects = sorted({str(n.originator_id) for n in batch} | {PORTFOLIO})
        self.tx = tx
        self.states: dict[Key, Condition] = {
            key: (row.active, row.value)
            for key, row in alert_store.conditions_of_subjects(tx, subjects).items()
        }
        self.read_subjects, self.read_subscriptions = set(subjects), set[str]()
        self.dirty: dict[Key, Condition] = {}
        self.fresh: set[Key] = set()  # the dirty conditions with no row in the table yet
        # (id of an index entry's subscription ids, subject) -> the condition all of them
        # hold on that subject in this batch (see `_evaluate`)
        self.uniform: dict[tuple[int, str], Condition] = {}
        # those of them not yet written to each subscription's condition (`_settle`)
        self.pending: dict[tuple[int, str], tuple[Collection[str], str]] = {}
        self.new_alerts: list[AlertValues] = []
        self.changed_facts: dict[str, Facts] = {}
        self.histories: dict[str, list[Any]] = {}  # the streams refolded in this batch
        events = [self.mapper.to_domain_event(n) for n in batch]
        # the streams the batch's events will refold, read at once: (version, events)
        self.prefetched: dict[str, tuple[int, list[Any]]] = {}
        if self.load_streams is not None:
            wanted = self._refolds(batch, events)
            if wanted:
                found = self.load_streams({UUID(pid): lte for pid, lte in wanted.items()})
                self.prefetched = {str(oid): (wanted[str(oid)], got) for oid, got in found.items()}
        # A large batch sends its alerts while it evaluates (`AlertStream`).
        stream = self.stream = (
            alert_store.AlertStream(tx)
            if tx.dialect == "postgres" and len(batch) >= STREAM_MIN_EVENTS
            else None
        )
        try:
            for n, event in zip(batch, events, strict=True):
                match event:
                    case Subscription.Created() | Subscription.Event():
                        self._pause()
                        self._subscription(tx, n, event)
                    case Project.Registered() | Project.Event():
                        self._project(n, event)
                    case FundingProgramme.Created() | FundingProgramme.Event():
                        self._pause()
                        self._programme(tx, n, event)
                if stream is not None and len(self.new_alerts) >= STREAM_CHUNK:
                    stream.send(self.new_alerts)  # whole events' alerts
                    self.new_alerts = []
            self._settle()
            if stream is not None:
                stream.finish()
        except BaseException as error:
            if stream is not None:
                stream.abort(error)
            raise
        finally:
            self.stream = None
        # The batch's facts, alerts (pending delivery), figures and changed condition states,
        # written in the batch's transaction (with the tracking position): exactly once.
        alert_store.save_all_facts(tx, self.changed_facts)
        changed = [(sid, subject, *self.dirty[sid, subject]) for sid, subject in sorted(self.dirty)]
        alert_store.record_rows(tx, self.new_alerts, changed, fresh=self.fresh)
        del self.tx, self.states, self.dirty, self.fresh, self.histories, self.uniform, self.pending
        del self.prefetched
        self.position = batch[-1].id if batch else applied

    def _subscription(self, tx: Tx, n: Notification, event: Any) -> None:
        sid, version = str(n.originator_id), n.originator_version
        self._settle()  # the index's entries, or their conditions, may change
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
                self.read_subscriptions.add(sid)
                self.index.remove(sid)
                self.programme_rules.pop(sid, None)
                return
            case _:
                return
        # A new or changed rule is evaluated at once on what is known (cause: this event).
        rule = rule_from_payload(event.rule)
        if programme_alerts.follows(rule):  # programme rules are not in the projects' index
            self.index.remove(sid)
            self.programme_rules[sid] = rule
            checks = programme_alerts.rule_checks(tx, sid, rule)
        else:
            self.programme_rules.pop(sid, None)
            self.index.put(sid, rule)
            checks = self._rule_checks(sid, rule)
        self._apply(checks, _cause(n, event))

    def _rule_checks(self, sid: str, rule: Rule) -> list[Check]:
        if rule.metric in PORTFOLIO_METRICS:
            return [Check(sid, rule, PORTFOLIO, self.sums.value(rule.metric))]
        return rule_checks(sid, rule, self.projects, self.stable)

    def _project(self, n: Notification, event: Any) -> None:
        pid = str(n.originator_id)
        state = self._advance(pid, n.originator_version, event)
        if state is None:
            return
        before = self.projects.get(pid)
        after = project_facts(state)
        if after == before:
            return
        checks = self.index.project_checks(pid, before, after)
        moved = self.sums.replace(self.index.portfolio, before, after)
        self.projects[pid] = self.changed_facts[pid] = after
        cause = _cause(n, event)
        if checks:
            self._evaluate(checks, pid, before, after, cause)
        if moved:
            self._evaluate(moved, PORTFOLIO, None, None, cause)

    def _advance(self, pid: str, version: int, event: Any) -> ProjectState | None:
        """The project's latest state after `event`: applied to the kept state when it is
        the latest by effective date, else refolded from the stream up to it."""
        latest = self.latest.get(pid)
        if isinstance(event, Project.Registered) and version == 1:
            state = ProjectState(pid)
            latest = self.latest[pid] = Latest(state, event.effective_date, event.effective_date)
        elif latest is not None and latest.state.version == version - 1:
            day = sort_date(event, latest.registered_on)
            if day < latest.last:  # backdated: a later-dated event may still govern
                return self._refold(pid, version, event)
            latest.last, state = day, latest.state
        else:
            return self._refold(pid, version, event)
        event.apply(state)
        state.version = max(state.version, version)
        if pid in self.histories:
            self.histories[pid].append(event)
        return state

    def _refolds(self, batch: Sequence[Notification], events: list[Any]) -> dict[str, int]:
        """The streams `_advance` will read for the batch (project id -> up to which
        version): the first refold of each project, foreseen from the kept latest dates
        as `_advance` decides. A wrong guess costs one read, never a different state: the
        refold reads its stream itself when the one read here does not end where it needs."""
        wanted: dict[str, int] = {}
        seen: dict[str, tuple[int, date, date] | None] = {}  # version, registered on, last
        for n, event in zip(batch, events, strict=True):
            if not isinstance(event, Project.Registered | Project.Event):
                continue
            pid, version = str(n.originator_id), n.originator_version
            if pid in wanted:
                continue
            if isinstance(event, Project.Registered) and version == 1:
                seen[pid] = (1, event.effective_date, event.effective_date)
                continue
            if pid in seen:
                now = seen[pid]
            else:
                latest = self.latest.get(pid)
                now = (
                    None
                    if latest is None
                    else (latest.state.version, latest.registered_on, latest.last)
                )
            if now is not None and now[0] == version - 1:
                day = sort_date(event, now[1])
                if day >= now[2]:
                    seen[pid] = (version, now[1], day)
                    continue
            if version > 1:
                wanted[pid] = version - 1
        return wanted

    def _refold(self, pid: str, version: int, event: Any) -> ProjectState | None:
        """Fold the project's stream up to `event`: read from the store once per batch, then
        kept (with the batch's next events of that project) until the batch is through."""
        kept = self.histories.get(pid)
        read = self.prefetched.pop(pid, None)
        if kept and kept[-1].originator_version == version - 1:
            events = kept
        elif read is not None and read[0] == version - 1:
            events = read[1]
        else:
            events = self.load_events(UUID(pid), version - 1)
        events.append(event)
        self.histories[pid] = events
        state = fold(events)
        registration = next((e for e in events if isinstance(e, Project.Registered)), None)
        if state is None or registration is None:
            self.latest.pop(pid, None)
            self.histories.pop(pid, None)
            return None
        registered_on = registration.effective_date
        last = max(sort_date(e, registered_on) for e in events)
        self.latest[pid] = Latest(state, registered_on, last)
        return state

    def _known(self, key: Key) -> Condition | None:
        """The condition of `key` as known (read with the batch, or with its subscription)."""
        if key in self.states:
            return self.states[key]
        sid, subject = key
        if subject in self.read_subjects or sid in self.read_subscriptions:
            return None
        self._pause()
        for found, row in alert_store.conditions_of_subscription(self.tx, sid).items():
            self.states.setdefault(found, (row.active, row.value))
        self.read_subscriptions.add(sid)
        return self.states.get(key)

    def _pause(self) -> None:
        """Free the batch's connection for a statement (ends a streaming COPY, if open)."""
        if self.stream is not None:
            self.stream.pause()

    def _programme(self, tx: Tx, n: Notification, event: Any) -> None:
        pid = str(n.originator_id)
        events = self.load_events(UUID(pid), n.originator_version - 1)  # programmes are short
        checks = programme_alerts.programme_checks(tx, self.programme_rules, pid, [*events, event])
        self._apply(checks, _cause(n, event))

    @staticmethod
    def _common(
        subject: str, before: Facts | None, after: Facts | None, cause: Cause, now: datetime
    ) -> AlertShared:
        """What an event's alerts on `subject` share (the figures' JSON made once)."""
        return (
            subject,
            json.dumps(before),
            json.dumps(after),
            cause.position,
            cause.stream,
            cause.version,
            cause.type,
            now,
        )

    def _settle(self) -> None:
        """Write the conditions `_evaluate` kept per entry (`pending`) to each subscription's
        (`states`, `dirty`), and forget the entries' shared conditions."""
        states, dirty = self.states, self.dirty
        for ukey, (sids, subject) in self.pending.items():
            condition = self.uniform[ukey]
            for sid in sids:
                states[sid, subject] = dirty[sid, subject] = condition
        self.pending.clear()
        self.uniform.clear()

    def _apply(self, checks: list[Check], cause: Cause) -> None:
        """Evaluate each check (one subscription, one subject) on the known condition."""
        self._settle()  # these conditions change outside their entries' checks
        for check in checks:
            one = RuleChecks(check.rule, (check.subscription_id,), check.value)
            self._evaluate([one], check.subject, check.before, check.after, cause, shared=False)

    def _evaluate(
        self,
        checks: list[RuleChecks],
        subject: str,
        before: Facts | None,
        after: Facts | None,
        cause: Cause,
        *,
        shared: bool = True,
    ) -> None:
        """Evaluate rules on one subject for each of their subscriptions' known condition;
        keep the changed conditions and the alerts (on a flip) for the batch.

        The same as `alert_conditions.evaluate` per subscription: a rule's next condition is
        computed once per prior condition, the figures' JSON once per event. With `shared`
        (the checks are the index's entries), an entry whose subscriptions all hold one
        condition on `subject` (`self.uniform`) is computed once: skipped when that
        condition would not change; else the entry's new condition is kept (`pending`,
        written to each subscription's by `_settle`, before anything else reads them) and,
        on a flip, each subscription's alert appended.
        """
        now = datetime.now(UTC)
        states, dirty, alerts, fresh = self.states, self.dirty, self.new_alerts, self.fresh
        uniform, pending = self.uniform, self.pending
        read = subject in self.read_subjects
        common: AlertShared | None = None
        position = cause.position
        for check in checks:
            rule, value = check.rule, check.value
            sids = check.subscription_ids
            stored = None if value is None else str(value)
            metric = rule.metric
            if shared:
                ukey = (id(sids), subject)
                held = uniform.get(ukey)
                if held is not None:  # every subscription holds `held`: one computation
                    active, previous = held
                    new_active = rule.next_active(active, value)
                    new_stored = previous if stored is None else stored
                    if new_active == active and new_stored == previous:
                        continue  # every subscription's condition stays as it is
                    uniform[ukey] = (new_active, new_stored)
                    pending[ukey] = (sids, subject)  # their conditions, written later
                    if new_active == active:
                        continue
                    if common is None:
                        common = self._common(subject, before, after, cause, now)
                    kind = "raised" if new_active else "cleared"
                    for sid in sids:
                        alerts.append(
                            (
                                alert_id(sid, subject, position),
                                sid,
                                kind,
                                metric,
                                previous,
                                new_stored,
                                common,
                            )
                        )
                    continue
            # prior condition -> (next condition, flipped), computed once per prior
            moves: dict[Condition | None, tuple[Condition, bool]] = {}
            outcome: Condition | None = None  # the next condition, if it is every one's
            mixed = False
            for sid in sids:
                key = (sid, subject)
                known = states.get(key)
                if known is None and not read:
                    known = self._known(key)
                move = moves.get(known)
                if move is None:
                    active, previous = (False, None) if known is None else known
                    new_active = rule.next_active(active, value)
                    move = moves[known] = (
                        (new_active, previous if stored is None else stored),
                        new_active != active,
                    )
                new, flipped = move
                if outcome is None:
                    outcome = new
                elif new != outcome:
                    mixed = True
                if known is None:  # no row yet (none read, none written in this batch)
                    states[key] = dirty[key] = new
                    fresh.add(key)
                elif new != known:
                    states[key] = dirty[key] = new
                if not flipped:
                    continue
                if common is None:
                    common = self._common(subject, before, after, cause, now)
                alerts.append(
                    (
                        alert_id(sid, subject, position),
                        sid,
                        "raised" if new[0] else "cleared",
                        metric,
                        None if known is None else known[1],
                        new[1],
                        common,
                    )
                )
            if shared:
                if outcome is not None and not mixed:
                    uniform[ukey] = outcome
                else:
                    uniform.pop(ukey, None)


def _cause(n: Notification, event: Any) -> Cause:
    return Cause(n.id, str(n.originator_id), n.originator_version, type(event).__name__)
