"""Alert evaluation, pure: which conditions a change touches, and whether each one flips.

No database here: the alerts projector reads the known conditions, asks `project_checks`
or `rule_checks` what to evaluate, `evaluate`s each check into an `AlertTransition`, and
writes the transitions through `projections.alert_store`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.subscription import PORTFOLIO_METRICS, Rule
from domain.values import canonical_ministry
from projections.alert_values import Facts, covers, portfolio_value, project_value

PORTFOLIO = "portfolio"  # the subject of a portfolio metric's condition
ALERT_NS = UUID("6f1c3c57-9d7e-4c55-9a51-2d0f6f3e8a11")


@dataclass(frozen=True)
class Cause:
    """The event that changed a value: its position, stream, version and type."""

    position: int
    stream: str
    version: int
    type: str


@dataclass(frozen=True)
class Check:
    """One rule to check on one subject: the value it has now and the facts around it."""

    subscription_id: str
    rule: Rule
    subject: str
    value: Decimal | None
    before: Facts | None = None
    after: Facts | None = None


@dataclass(frozen=True)
class ConditionRow:
    """A rule's condition on one subject: raised or not, and the last known value (text)."""

    subscription_id: str
    subject: str
    active: bool
    value: str | None


@dataclass(frozen=True)
class AlertRow:
    """One alert: a condition raised or cleared, with what it was and what caused it."""

    id: str
    subscription_id: str
    subject: str
    kind: str
    metric: str
    value_before: str | None
    value_after: str | None
    figures_before: str
    figures_after: str
    cause_position: int
    cause_stream: str
    cause_version: int
    cause_type: str
    created_at: datetime


ALERT_COLUMNS = tuple(f.name for f in fields(AlertRow))
# An alert as values: what is its own, then what it shares with the other alerts of its
# subject and cause (one tuple for them all: the writer formats it once).
OWN_COLUMNS = ("id", "subscription_id", "kind", "metric", "value_before", "value_after")
SHARED_COLUMNS = tuple(c for c in ALERT_COLUMNS if c not in OWN_COLUMNS)
AlertShared = tuple[Any, ...]  # in the order of SHARED_COLUMNS
AlertValues = tuple[str, str, str, str, str | None, str | None, AlertShared]
_ALERT_NS_BYTES = ALERT_NS.bytes


def alert_id(subscription_id: str, subject: str, position: int) -> str:
    """The alert's id: a UUID ordered by the log position of its cause, still deterministic
    (a replay or a re-run after a crash gives the same id: that is the idempotency).

    RFC 9562 UUIDv8: the top 48 bits are the cause's position, then the version nibble 8,
    12 bits of the SHA-1 of `ALERT_NS + "sid:subject:position"`, the variant's two bits (10)
    and 62 more bits of that hash (its hex digits 0-2, then the low two bits of digit 3 and
    digits 4-18). Ids grow with the position, so a batch's ids are appended at the right
    edge of `pr_alerts`' primary key, not scattered over all its leaves (a random uuid5
    touched one random leaf per alert: at millions of alerts, buffer misses and a full-page
    image in the WAL for each leaf touched first after a checkpoint). Stores written before
    keep their uuid5 ids: both are uuids, read as the same text.
    """
    x = _sha1(
        _ALERT_NS_BYTES + f"{subscription_id}:{subject}:{position}".encode(),
        usedforsecurity=False,
    ).hexdigest()
    p = f"{position & _POSITION_MASK:012x}"
    return f"{p[:8]}-{p[8:]}-8{x[:3]}-{_VARIANT[x[3]]}{x[4:7]}-{x[7:19]}"


_POSITION_MASK = (1 << 48) - 1  # a notification id past 2**48 wraps (keeps the UUID's form)
_sha1 = hashlib.sha1
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


@dataclass(frozen=True)
class AlertTransition:
    """What one check changes: the condition to store (None: as it was), the alert (or None)."""

    condition: ConditionRow | None
    alert: AlertRow | None


def evaluate(
    check: Check, known: ConditionRow | None, cause: Cause, now: datetime
) -> AlertTransition:
    """The condition after `check`'s value, and an alert when it flips (raised or cleared)."""
    active, previous = (False, None) if known is None else (known.active, known.value)
    new_active = check.rule.next_active(active, check.value)
    stored = previous if check.value is None else str(check.value)
    condition = None
    if known is None or new_active != active or stored != previous:
        condition = ConditionRow(check.subscription_id, check.subject, new_active, stored)
    if new_active == active:
        return AlertTransition(condition, None)
    alert = AlertRow(
        id=alert_id(check.subscription_id, check.subject, cause.position),
        subscription_id=check.subscription_id,
        subject=check.subject,
        kind="raised" if new_active else "cleared",
        metric=check.rule.metric,
        value_before=previous,
        value_after=stored,
        figures_before=json.dumps(check.before),
        figures_after=json.dumps(check.after),
        cause_position=cause.position,
        cause_stream=cause.stream,
        cause_version=cause.version,
        cause_type=cause.type,
        created_at=now,
    )
    return AlertTransition(condition, alert)


def rule_checks(
    subscription_id: str,
    rule: Rule,
    projects: Mapping[str, Facts],
    stable: Callable[[str], str] = canonical_ministry,
) -> list[Check]:
    """A new or changed rule, checked at once on every subject it covers (`stable`: a
    ministry code to its stable code, the ministries reference)."""
    if rule.metric in PORTFOLIO_METRICS:
        value = portfolio_value(rule.metric, projects.values())
        return [Check(subscription_id, rule, PORTFOLIO, value)]
    return [
        Check(subscription_id, rule, pid, project_value(rule, facts), facts, facts)
        for pid, facts in projects.items()
        if covers(rule, pid, facts, stable)
    ]


def project_checks(
    rules: Mapping[str, Rule],
    projects: Mapping[str, Facts],
    project_id: str,
    after: Facts,
    stable: Callable[[str], str] = canonical_ministry,
) -> list[Check]:
    """The checks one project's new facts call for, `projects` holding the facts before.

    A project rule is checked when it covers the project before or after the change; a
    portfolio rule only when its metric's value moved.
    """
    before = projects.get(project_id)
    moved: dict[str, Decimal | None] = {}
    for metric in {r.metric for r in rules.values()} & set(PORTFOLIO_METRICS):
        new = portfolio_value(metric, _replaced(projects, project_id, after))
        if new != portfolio_value(metric, projects.values()):
            moved[metric] = new
    checks = []
    for sid, rule in sorted(rules.items()):
        if rule.metric in PORTFOLIO_METRICS:
            if rule.metric in moved:
                checks.append(Check(sid, rule, PORTFOLIO, moved[rule.metric]))
        elif covers(rule, project_id, after, stable) or (
            before is not None and covers(rule, project_id, before, stable)
        ):
            checks.append(Check(sid, rule, project_id, project_value(rule, after), before, after))
    return checks


def _replaced(projects: Mapping[str, Facts], project_id: str, after: Facts) -> Iterator[Facts]:
    """Every project's facts, with `project_id`'s as `after` (added last when it is new)."""
    for pid, facts in projects.items():
        yield after if pid == project_id else facts
    if project_id not in projects:
        yield after
