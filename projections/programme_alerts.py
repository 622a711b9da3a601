"""Programme rules of the alerts projection: the share of its envelope a programme commits.

Called by projections/alerts.py for programme events and programme rules. Each programme
event folds the programme's stream as known then (its latest state: every announced award
over the envelope of its latest revision), keeps the share in `pr_alert_programmes`, and
returns the checks of the rules that follow that programme, evaluated by the projector with
the same one-alert-per-crossing condition as the project rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from domain.programme import FundingProgramme
from domain.subscription import PROGRAMME_METRICS, Rule
from projections.alert_conditions import Check
from projections.db import Tx

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


def programme_checks(
    tx: Tx, rules: Mapping[str, Rule], programme_id: str, events: Sequence[Any]
) -> list[Check]:
    """Fold the programme as known at its latest event, keep its facts, and return the
    checks of the rules that follow it (none when its facts did not change)."""
    programme = None
    for event in events:
        programme = event.mutate(programme)
    if not isinstance(programme, FundingProgramme):
        return []
    before, after = _stored(tx, programme_id), facts(programme)
    if after == before:
        return []
    text = json.dumps(after)
    if before is None:
        tx.execute(
            "INSERT INTO pr_alert_programmes (programme_id, facts) VALUES (%s, %s)",
            (programme_id, text),
        )
    else:
        tx.execute(
            "UPDATE pr_alert_programmes SET facts = %s WHERE programme_id = %s",
            (text, programme_id),
        )
    return [
        Check(sid, rule, subject(programme_id), _value(after), before, after)
        for sid, rule in sorted(rules.items())
        if follows(rule) and rule.scope_value == programme_id
    ]


def rule_checks(tx: Tx, subscription_id: str, rule: Rule) -> list[Check]:
    """A new or changed programme rule, checked at once on what is known."""
    pid = str(rule.scope_value)
    found = _stored(tx, pid)
    return [Check(subscription_id, rule, subject(pid), _value(found), found, found)]
