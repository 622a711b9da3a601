"""A funding programme as of a date and as known at a time, folded from its events.

A programme's stream is short (an envelope, a few calls, tens of laureates), so it is folded
on each read rather than kept in tables; `projections/programmes.py` only lists the ids.
Every amount is a Money: amount, currency and kind (envelope, announced, engaged,
disbursed, opened); kinds are never added together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.programme import FundingProgramme, envelope_on

P = FundingProgramme
HUNDRED = Decimal(100)


def money(amount: Decimal | None, currency: str, kind: str) -> dict[str, Any] | None:
    """An amount that states its currency and its kind."""
    return None if amount is None else {"amount": amount, "currency": currency, "kind": kind}


@dataclass
class _Laureate:
    id: UUID
    name: str | None
    call: str | None
    project_id: UUID | None
    ministry: str | None = None
    ministry_code: str | None = None
    savings: Decimal | None = None
    confidence: str | None = None
    effective_date: date | None = None
    dated: bool = True
    source: str | None = None
    notes: str | None = None
    amounts: dict[str, Decimal] = field(default_factory=dict)


def visible(events: Iterable[Any], as_of: date, known_at: datetime | None) -> list[Any]:
    """The events recorded by `known_at` and effective on or before `as_of`."""
    return [
        e
        for e in events
        if e.effective_date <= as_of and (known_at is None or e.timestamp <= known_at)
    ]


def programme_view(events: list[Any], as_of: date, known_at: datetime | None) -> dict[str, Any]:
    """Envelope in force, committed, available, calls (published vs itemised), ministries."""
    created = events[0]
    currency: str = created.currency
    seen = visible(events, as_of, known_at)
    envelopes: list[tuple[date, Decimal]] = []
    history: list[dict[str, Any]] = []
    calls: dict[str, date] = {}
    figures: dict[str, Any] = {}
    laureates: dict[UUID, _Laureate] = {}
    by_recipient: dict[UUID, UUID] = {}
    for e in sorted(seen, key=lambda e: (e.effective_date, e.timestamp)):
        if isinstance(e, P.Created | P.EnvelopeRevised):
            envelopes.append((e.effective_date, e.envelope))
            reason = e.reason if isinstance(e, P.EnvelopeRevised) else "initial envelope"
            history.append(
                {
                    "effective_date": e.effective_date,
                    "envelope": money(e.envelope, currency, "envelope"),
                    "reason": reason,
                    "source": e.source,
                    "recorded_at": e.timestamp,
                }
            )
        elif isinstance(e, P.CallOpened):
            calls[e.call] = e.effective_date
        elif isinstance(e, P.FigurePublished):
            figures[e.label] = e
        elif isinstance(e, P.LaureateSelected):
            laureates[e.laureate_id] = _Laureate(
                e.laureate_id, e.name, e.call, e.project_id, e.ministry, e.ministry_code,
                e.savings, e.confidence, e.effective_date, e.dated, e.source, e.narrative,
            )  # fmt: skip
            by_recipient[e.project_id or e.laureate_id] = e.laureate_id
        elif isinstance(e, P.FundingAwarded | P.FundingEngaged | P.FundingDisbursed):
            kind = (
                "announced"
                if isinstance(e, P.FundingAwarded)
                else "engaged"
                if isinstance(e, P.FundingEngaged)
                else "disbursed"
            )
            lid = by_recipient.get(e.project_id)
            if lid is None:  # an award through the API, to a project with no laureate record
                lid = by_recipient[e.project_id] = e.project_id
                laureates[lid] = _Laureate(
                    lid, None, e.call, e.project_id, effective_date=e.effective_date,
                    source=e.source, notes=e.narrative,
                )  # fmt: skip
            found = laureates[lid]
            found.amounts[kind] = found.amounts.get(kind, Decimal(0)) + e.amount
    totals = {
        kind: sum((lau.amounts.get(kind, Decimal(0)) for lau in laureates.values()), Decimal(0))
        for kind in ("announced", "engaged", "disbursed")
    }
    envelope = envelope_on(envelopes, as_of) if envelopes else None
    committed = totals["announced"]
    return {
        "id": created.originator_id,
        "name": created.name,
        "currency": currency,
        "as_of": as_of,
        "known_at": known_at,
        "opened_on": created.effective_date,
        "envelope": money(envelope, currency, "envelope"),
        "envelope_history": history,
        "committed": money(committed, currency, "announced"),
        "available": money(
            None if envelope is None else envelope - committed, currency, "envelope"
        ),
        "commitment_share_pct": share(committed, envelope),
        "engaged": money(totals["engaged"], currency, "engaged"),
        "disbursed": money(totals["disbursed"], currency, "disbursed"),
        "laureates": len(laureates),
        "calls": [
            call_row(call, day, figures.get(call), laureates.values(), currency)
            for call, day in sorted(calls.items(), key=lambda c: (c[1], c[0]))
        ],
        "by_ministry": by_ministry(laureates.values(), currency),
        "published_figures": [
            figure_row(f, currency) for label, f in sorted(figures.items()) if label not in calls
        ],
        "_laureates": laureates,
    }


def share(committed: Decimal, envelope: Decimal | None) -> Decimal | None:
    """committed / envelope × 100, to the hundredth."""
    if not envelope:
        return None
    return (committed / envelope * HUNDRED).quantize(Decimal("0.01"))


def figure_row(f: Any, currency: str) -> dict[str, Any]:
    """A published figure as read: its label, kind, count, total (with its kind of money)."""
    return {
        "label": f.label,
        "kind": f.kind,
        "laureates": f.laureates_count,
        "total": money(f.total, currency, f.money_kind),
        "effective_date": f.effective_date,
        "dated": f.dated,
        "confidence": f.confidence,
        "scope": f.scope,
        "source": f.source,
        "notes": f.narrative,
    }


def call_row(
    call: str, day: date, published: Any, laureates: Iterable[_Laureate], currency: str
) -> dict[str, Any]:
    """Published count and total next to the itemised ones, the difference as not itemised."""
    mine = [lau for lau in laureates if lau.call == call]
    amounts = [lau.amounts["announced"] for lau in mine if "announced" in lau.amounts]
    itemised = sum(amounts, Decimal(0))
    count = total = None
    if published is not None:
        count, total = published.laureates_count, published.total
    return {
        "call": call,
        "opened_on": day,
        "published": None
        if published is None
        else {
            "laureates": count,
            "total": money(total, currency, "announced"),
            "effective_date": published.effective_date,
            "source": published.source,
        },
        "itemised": {
            "laureates": len(mine),
            "with_amount": len(amounts),
            "total": money(itemised, currency, "announced"),
        },
        "not_itemised": {
            "laureates": None if count is None else count - len(mine),
            "total": money(None if total is None else total - itemised, currency, "announced"),
        },
    }


def by_ministry(laureates: Iterable[_Laureate], currency: str) -> list[dict[str, Any]]:
    """Laureates and announced amounts by ministry code ("" when the sources give none)."""
    groups: dict[str, list[_Laureate]] = {}
    for lau in laureates:
        groups.setdefault(lau.ministry_code or "", []).append(lau)
    return [
        {
            "ministry_code": code or None,
            "laureates": len(group),
            "announced": money(
                sum((lau.amounts.get("announced", Decimal(0)) for lau in group), Decimal(0)),
                currency,
                "announced",
            ),
        }
        for code, group in sorted(groups.items())
    ]


def laureate_row(lau: _Laureate, currency: str) -> dict[str, Any]:
    """One laureate, each kind of money on its own (None: not known)."""
    return {
        "id": lau.id,
        "name": lau.name,
        "call": lau.call,
        "project_id": lau.project_id,
        "in_portfolio": lau.project_id is not None,
        "ministry": lau.ministry,
        "ministry_code": lau.ministry_code,
        "announced": money(lau.amounts.get("announced"), currency, "announced"),
        "engaged": money(lau.amounts.get("engaged"), currency, "engaged"),
        "disbursed": money(lau.amounts.get("disbursed"), currency, "disbursed"),
        "savings": money(lau.savings, currency, "savings"),
        "confidence": lau.confidence,
        "effective_date": lau.effective_date,
        "dated": lau.dated,
        "source": lau.source,
        "notes": lau.notes,
    }


def call_laureates(view: dict[str, Any], call: str) -> list[dict[str, Any]] | None:
    """The laureates of one call of a view (None: no such call on that date)."""
    if call not in {c["call"] for c in view["calls"]}:
        return None
    return [
        laureate_row(lau, view["currency"])
        for lau in sorted(view["_laureates"].values(), key=lambda x: (x.name or "", str(x.id)))
        if lau.call == call
    ]


def project_funding(view: dict[str, Any], project_id: UUID) -> list[dict[str, Any]]:
    """What one portfolio project received from this programme, by laureate, by kind."""
    return [
        laureate_row(lau, view["currency"])
        for lau in view["_laureates"].values()
        if lau.project_id == project_id
    ]
