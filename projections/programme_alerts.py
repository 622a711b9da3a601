"""Programme rules of the alerts projection: the share of its envelope a programme commits.

Called by projections/alerts.py for programme events and programme rules. Each programme
event folds the programme's stream as known then (its latest state: every announced award
over the envelope of its latest revision), keeps the share in `pr_alert_programmes`, and
evaluates the rules that follow that programme with the same one-alert-per-crossing
condition as the project rules.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from domain.programme import FundingProgramme
from domain.subscription import PROGRAMME_METRICS, Rule
from projections.db import Tx

PROGRAMME_PREFIX = "domain.programme:FundingProgramme."
DDL = (
    "CREATE TABLE IF NOT EXISTS pr_alert_programmes (programme_id text PRIMARY KEY,"
    " facts text NOT NULL)"
)


def setup(tx: Tx) -> None:
    """Create the programmes' facts table (idempotent)."""
    tx.execute(DDL)


def follows(rule: Rule) -> bool:
    """Whether the rule is a programme rule."""
    return rule.metric in PROGRAMME_METRICS


def subject(programme_id: str) -> str:
    """The alert subject of a programme."""
    return f"programme:{programme_id}"


def facts(programme: FundingProgramme) -> dict[str, Any]:
    """What a programme rule reads: committed, envelope, their share (as text)."""
    share = None
    if programme.envelope:
        share = (programme.committed / programme.envelope * 100).quantize(Decimal("0.01"))
    return {
        "name": programme.name,
        "currency": programme.currency,
        "committed": str(programme.committed),
        "envelope": str(programme.envelope),
        "programme_commitment_share_pct": None if share is None else str(share),
    }


def _value(found: dict[str, Any] | None) -> Decimal | None:
    raw = None if found is None else found.get("programme_commitment_share_pct")
    return None if raw is None else Decimal(raw)


def _stored(tx: Tx, programme_id: str) -> dict[str, Any] | None:
    text = tx.scalar(
        "SELECT facts FROM pr_alert_programmes WHERE programme_id = %s", (programme_id,)
    )
    return None if text is None else dict(json.loads(text))


def on_event(projector: Any, tx: Tx, n: Notification, subs: dict[str, Rule]) -> None:
    """Fold the programme as known at this event; evaluate the rules that follow it."""
    pid = str(n.originator_id)
    key = subject(pid)
    events = projector.history.get(key)
    if events is None or (events and events[-1].originator_version != n.originator_version - 1):
        events = projector.load_events(UUID(pid), n.originator_version - 1)
    events.append(projector.mapper.to_domain_event(n))
    projector.history[key] = events
    programme = None
    for event in events:
        programme = event.mutate(programme)
    if not isinstance(programme, FundingProgramme):
        return
    before, after = _stored(tx, pid), facts(programme)
    if after == before:
        return
    text = json.dumps(after)
    if before is None:
        tx.execute(
            "INSERT INTO pr_alert_programmes (programme_id, facts) VALUES (%s, %s)", (pid, text)
        )
    else:
        tx.execute("UPDATE pr_alert_programmes SET facts = %s WHERE programme_id = %s", (text, pid))
    for sid, rule in sorted(subs.items()):
        if follows(rule) and rule.scope_value == pid:
            projector._evaluate(tx, n, sid, rule, key, _value(after), before, after)


def on_rule(projector: Any, tx: Tx, n: Notification, sid: str, rule: Rule) -> None:
    """A new or changed programme rule is evaluated at once on what is known."""
    pid = str(rule.scope_value)
    found = _stored(tx, pid)
    projector._evaluate(tx, n, sid, rule, subject(pid), _value(found), found, found)
