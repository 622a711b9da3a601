"""The FundingProgramme aggregate (e.g. FTAP): an envelope, calls and awards."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import (
    CallAlreadyOpen,
    EnvelopeBelowCommitted,
    EnvelopeOverCommitted,
    InvalidValue,
    UnknownCall,
)
from domain.values import EventProvenance, Provenance, check_amount, check_effective_date

DatedAmount = list[Any]  # [date, Decimal]

# Kinds of money: only announced awards commit the envelope; the kinds are never added.
MONEY_KINDS = ("announced", "engaged", "disbursed")


class FundingProgramme(Aggregate):
    """A fund that awards money to projects in successive calls, within an envelope."""

    class Event(Aggregate.Event, EventProvenance):
        def apply(self, aggregate: FundingProgramme) -> None:
            """Change the programme's state."""

    class Created(Aggregate.Created, EventProvenance):
        name: str
        envelope: Decimal
        currency: str

        def apply(self, aggregate: FundingProgramme) -> None:
            aggregate.name = self.name
            aggregate.envelope = self.envelope
            aggregate.currency = self.currency
            aggregate.calls = []
            aggregate.committed = Decimal(0)
            aggregate.awards = []
            aggregate.opened_on = self.effective_date
            aggregate.envelopes = [[self.effective_date, self.envelope]]
            aggregate.dated_awards = []
            aggregate.laureates = {}
            aggregate.figures = {}
            aggregate.other_funding = []

    class CallOpened(Event):
        call: str

        def apply(self, aggregate: FundingProgramme) -> None:
            aggregate.calls.append(self.call)

    class FundingAwarded(Event):
        """An announced award: it commits the envelope (project_id: the recipient)."""

        project_id: UUID
        amount: Decimal
        call: str | None

        def apply(self, aggregate: FundingProgramme) -> None:
            aggregate.committed += self.amount
            aggregate.awards.append(
                {"project_id": self.project_id, "amount": self.amount, "call": self.call}
            )
            aggregate.dated_awards.append([self.effective_date, self.amount])

    class FundingEngaged(Event):
        project_id: UUID
        amount: Decimal
        call: str | None

        def apply(self, aggregate: FundingProgramme) -> None:
            aggregate.other_funding.append(
                {
                    "project_id": self.project_id,
                    "amount": self.amount,
                    "call": self.call,
                    "kind": "engaged",
                }
            )

    class FundingDisbursed(Event):
        project_id: UUID
        amount: Decimal
        call: str | None

        def apply(self, aggregate: FundingProgramme) -> None:
            aggregate.other_funding.append(
                {
                    "project_id": self.project_id,
                    "amount": self.amount,
                    "call": self.call,
                    "kind": "disbursed",
                }
            )

    class EnvelopeRevised(Event):
        envelope: Decimal
        reason: str

        def apply(self, aggregate: FundingProgramme) -> None:
            aggregate.envelopes.append([self.effective_date, self.envelope])
            aggregate.envelope = envelope_on(aggregate.envelopes, date.max) or aggregate.envelope

    class FigurePublished(Event):
        """A figure a source published (a call's count and total, a year's, an audit's)."""

        label: str
        kind: str
        money_kind: str
        laureates_count: int | None
        total: Decimal | None
        dated: bool
        confidence: str | None
        scope: str

        def apply(self, aggregate: FundingProgramme) -> None:
            aggregate.figures[self.label] = {
                "total": self.total,
                "count": self.laureates_count,
                "on": self.effective_date,
            }

    class LaureateSelected(Event):
        """A laureate of a call; project_id is set when it is a project of the portfolio."""

        laureate_id: UUID
        name: str
        call: str
        project_id: UUID | None
        ministry: str | None
        ministry_code: str | None
        savings: Decimal | None
        confidence: str | None
        dated: bool

        def apply(self, aggregate: FundingProgramme) -> None:
            aggregate.laureates[self.laureate_id] = {
                "name": self.name,
                "call": self.call,
                "project_id": self.project_id,
            }

    def __init__(self, **_: Any) -> None:  # state is set by Created.apply
        pass

    name: str
    envelope: Decimal
    currency: str
    calls: list[str]
    committed: Decimal
    awards: list[dict[str, Any]]
    opened_on: date
    # [date, amount] pairs as lists: a snapshot gives state back through JSON (no tuples)
    envelopes: list[DatedAmount]
    dated_awards: list[DatedAmount]
    laureates: dict[UUID, dict[str, Any]]
    figures: dict[str, dict[str, Any]]
    other_funding: list[dict[str, Any]]

    @classmethod
    def create(
        cls,
        *,
        name: str,
        envelope: Decimal,
        currency: str = "EUR",
        id: UUID | None = None,  # noqa: A002
        provenance: Provenance,
        today: date,
    ) -> FundingProgramme:
        """Create a programme with its envelope."""
        if not name.strip():
            raise InvalidValue("name must not be blank", field="name")
        check_amount(envelope, "envelope")
        check_effective_date(
            provenance.effective_date,
            today=today,
            registered_on=None,
            correction=False,
            narrative=None,
        )
        return cls._create(
            cls.Created,
            id=id if id is not None else cls.create_id(),
            name=name,
            envelope=envelope,
            currency=currency,
            effective_date=provenance.effective_date,
            actor=provenance.actor,
            source=provenance.source,
            narrative=provenance.narrative,
            correction=False,
        )

    @property
    def available(self) -> Decimal:
        """What is left of the envelope."""
        return self.envelope - self.committed

    def open_call(self, call: str, *, provenance: Provenance, today: date) -> None:
        """Open a call for projects."""
        if not call.strip():
            raise InvalidValue("call must not be blank", field="call")
        if call in self.calls:
            raise CallAlreadyOpen(f"call {call!r} is already open")
        self._record(self.CallOpened, provenance, today, call=call)

    def envelope_on(self, day: date) -> Decimal | None:
        """The envelope in force on `day` (None before the programme opened)."""
        return envelope_on(self.envelopes, day)

    def award(
        self,
        project_id: UUID,
        amount: Decimal,
        call: str | None,
        kind: str = "announced",
        *,
        provenance: Provenance,
        today: date,
    ) -> None:
        """Record money for a recipient; an announced award never over-commits the envelope
        in force on its effective date (nor on any later date)."""
        check_amount(amount)
        if kind not in MONEY_KINDS:
            raise InvalidValue(f"kind must be one of {', '.join(MONEY_KINDS)}", field="kind")
        if call is not None and call not in self.calls:
            raise UnknownCall(f"call {call!r} is not open on this programme")
        day = provenance.effective_date
        self._check_date(provenance, today)
        if kind != "announced":
            event = self.FundingEngaged if kind == "engaged" else self.FundingDisbursed
            self._record(event, provenance, today, project_id=project_id, amount=amount, call=call)
            return
        breach = first_breach(self.envelopes, [*self.dated_awards, [day, amount]])
        if breach is not None:
            when, committed, envelope = breach
            raise EnvelopeOverCommitted(
                f"awarding {amount} {self.currency} on {day} would over-commit the envelope: "
                f"{committed} {self.currency} committed on {when} against an envelope of "
                f"{envelope} {self.currency} in force that day"
            )
        self._record(
            self.FundingAwarded,
            provenance,
            today,
            project_id=project_id,
            amount=amount,
            call=call,
        )

    def revise_envelope(
        self, envelope: Decimal, reason: str, *, provenance: Provenance, today: date
    ) -> None:
        """Record a new envelope from its effective date; never below what is committed."""
        check_amount(envelope, "envelope")
        if not reason.strip():
            raise InvalidValue("an envelope revision needs a reason", field="reason")
        day = provenance.effective_date
        self._check_date(provenance, today)
        breach = first_breach([*self.envelopes, [day, envelope]], self.dated_awards)
        if breach is not None:
            when, committed, in_force = breach
            raise EnvelopeBelowCommitted(
                f"an envelope of {envelope} {self.currency} from {day} is below what is "
                f"already committed: {committed} {self.currency} on {when} "
                f"(the envelope in force would be {in_force} {self.currency})"
            )
        self._record(self.EnvelopeRevised, provenance, today, envelope=envelope, reason=reason)

    def publish_figure(
        self,
        *,
        label: str,
        kind: str,
        money_kind: str,
        laureates_count: int | None,
        total: Decimal | None,
        dated: bool,
        confidence: str | None,
        scope: str,
        provenance: Provenance,
        today: date,
    ) -> None:
        """Record a published figure (count and/or total) under its label."""
        if not label.strip():
            raise InvalidValue("a published figure needs a label", field="label")
        if total is not None:
            check_amount(total, "total")
        if money_kind not in (*MONEY_KINDS, "envelope", "opened"):
            raise InvalidValue("unknown kind of money", field="money_kind")
        self._record(
            self.FigurePublished,
            provenance,
            today,
            label=label,
            kind=kind,
            money_kind=money_kind,
            laureates_count=laureates_count,
            total=total,
            dated=dated,
            confidence=confidence,
            scope=scope,
        )

    def select_laureate(
        self,
        *,
        laureate_id: UUID,
        name: str,
        call: str,
        project_id: UUID | None,
        ministry: str | None,
        ministry_code: str | None,
        savings: Decimal | None,
        confidence: str | None,
        dated: bool,
        provenance: Provenance,
        today: date,
    ) -> None:
        """Record a laureate of an open call (with or without a known amount)."""
        if call not in self.calls:
            raise UnknownCall(f"call {call!r} is not open on this programme")
        if not name.strip():
            raise InvalidValue("a laureate needs a name", field="name")
        self._record(
            self.LaureateSelected,
            provenance,
            today,
            laureate_id=laureate_id,
            name=name,
            call=call,
            project_id=project_id,
            ministry=ministry,
            ministry_code=ministry_code,
            savings=savings,
            confidence=confidence,
            dated=dated,
        )

    def _check_date(self, provenance: Provenance, today: date) -> None:
        check_effective_date(
            provenance.effective_date,
            today=today,
            registered_on=self.opened_on,
            correction=provenance.correction,
            narrative=provenance.narrative,
        )

    def _record(
        self,
        event_class: type[FundingProgramme.Event],
        provenance: Provenance,
        today: date,
        **payload: Any,
    ) -> None:
        self._check_date(provenance, today)
        self.trigger_event(
            event_class,
            effective_date=provenance.effective_date,
            actor=provenance.actor,
            source=provenance.source,
            narrative=provenance.narrative,
            correction=provenance.correction,
            **payload,
        )


def envelope_on(envelopes: Sequence[Sequence[Any]], day: date) -> Decimal | None:
    """The envelope of the latest revision effective on or before `day` (a correction dated
    before the opening is held to the first envelope)."""
    in_force = min(envelopes, key=lambda e: e[0])[1] if envelopes else None
    for when, amount in sorted(envelopes, key=lambda e: e[0]):
        if when <= day:
            in_force = amount
    return in_force


def first_breach(
    envelopes: Sequence[Sequence[Any]], awards: Sequence[Sequence[Any]]
) -> tuple[date, Decimal, Decimal] | None:
    """The first date on which committed exceeds the envelope in force: (day, committed, env)."""
    days = sorted({d for d, _ in envelopes} | {d for d, _ in awards})
    for day in days:
        committed = sum((a for d, a in awards if d <= day), Decimal(0))
        envelope = envelope_on(envelopes, day)
        if committed and (envelope is None or committed > envelope):
            return day, committed, envelope if envelope is not None else Decimal(0)
    return None
