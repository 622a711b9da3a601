"""The FundingProgramme aggregate (e.g. FTAP): an envelope, calls and awards."""

from __future__ import annotations

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
from domain.values import EventProvenance as Provenance
from domain.values import check_amount, check_effective_date

# Kinds of money: only announced awards commit the envelope; the kinds are never added.
MONEY_KINDS = ("announced", "engaged", "disbursed")


class FundingProgramme(Aggregate):
    """A fund that awards money to projects in successive calls, within an envelope."""

    class Event(Aggregate.Event, Provenance):
        pass

    class Created(Aggregate.Created, Provenance):
        name: str
        envelope: Decimal
        currency: str

    class CallOpened(Event):
        call: str

    class FundingAwarded(Event):
        """An announced award: it commits the envelope (project_id: the recipient)."""

        project_id: UUID
        amount: Decimal
        call: str | None

    class FundingEngaged(Event):
        project_id: UUID
        amount: Decimal
        call: str | None

    class FundingDisbursed(Event):
        project_id: UUID
        amount: Decimal
        call: str | None

    class EnvelopeRevised(Event):
        envelope: Decimal
        reason: str

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

    def __init__(self, **_: Any) -> None:  # state is set by Created.apply
        pass

    name: str
    envelope: Decimal
    currency: str
    calls: list[str]
    committed: Decimal
    awards: list[dict[str, Any]]
    opened_on: date
    envelopes: list[tuple[date, Decimal]]
    dated_awards: list[tuple[date, Decimal]]
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
        effective_date: date,
        actor: str,
        source: str,
        narrative: str | None = None,
        today: date,
    ) -> FundingProgramme:
        """Create a programme with its envelope."""
        if not name.strip():
            raise InvalidValue("name must not be blank", field="name")
        check_amount(envelope, "envelope")
        check_effective_date(
            effective_date, today=today, registered_on=None, correction=False, narrative=None
        )
        return cls._create(
            cls.Created,
            id=id if id is not None else cls.create_id(),
            name=name,
            envelope=envelope,
            currency=currency,
            effective_date=effective_date,
            actor=actor,
            source=source,
            narrative=narrative,
            correction=False,
        )

    @property
    def available(self) -> Decimal:
        """What is left of the envelope."""
        return self.envelope - self.committed

    def open_call(self, call: str, **prov: Any) -> None:
        """Open a call for projects."""
        if not call.strip():
            raise InvalidValue("call must not be blank", field="call")
        if call in self.calls:
            raise CallAlreadyOpen(f"call {call!r} is already open")
        self._record(self.CallOpened, prov, call=call)

    def envelope_on(self, day: date) -> Decimal | None:
        """The envelope in force on `day` (None before the programme opened)."""
        return envelope_on(self.envelopes, day)

    def award(
        self,
        project_id: UUID,
        amount: Decimal,
        call: str | None,
        kind: str = "announced",
        **prov: Any,
    ) -> None:
        """Record money for a recipient; an announced award never over-commits the envelope
        in force on its effective date (nor on any later date)."""
        check_amount(amount)
        if kind not in MONEY_KINDS:
            raise InvalidValue(f"kind must be one of {', '.join(MONEY_KINDS)}", field="kind")
        if call is not None and call not in self.calls:
            raise UnknownCall(f"call {call!r} is not open on this programme")
        day: date = prov["effective_date"]
        self._check_date(prov)
        if kind != "announced":
            event = self.FundingEngaged if kind == "engaged" else self.FundingDisbursed
            self._record(event, prov, project_id=project_id, amount=amount, call=call)
            return
        breach = first_breach(self.envelopes, [*self.dated_awards, (day, amount)])
        if breach is not None:
            when, committed, envelope = breach
            raise EnvelopeOverCommitted(
                f"awarding {amount} {self.currency} on {day} would over-commit the envelope: "
                f"{committed} {self.currency} committed on {when} against an envelope of "
                f"{envelope} {self.currency} in force that day"
            )
        self._record(self.FundingAwarded, prov, project_id=project_id, amount=amount, call=call)

    def revise_envelope(self, envelope: Decimal, reason: str, **prov: Any) -> None:
        """Record a new envelope from its effective date; never below what is committed."""
        check_amount(envelope, "envelope")
        if not reason.strip():
            raise InvalidValue("an envelope revision needs a reason", field="reason")
        day: date = prov["effective_date"]
        self._check_date(prov)
        breach = first_breach([*self.envelopes, (day, envelope)], self.dated_awards)
        if breach is not None:
            when, committed, in_force = breach
            raise EnvelopeBelowCommitted(
                f"an envelope of {envelope} {self.currency} from {day} is below what is "
                f"already committed: {committed} {self.currency} on {when} "
                f"(the envelope in force would be {in_force} {self.currency})"
            )
        self._record(self.EnvelopeRevised, prov, envelope=envelope, reason=reason)

    def publish_figure(self, **figure: Any) -> None:
        """Record a published figure (count and/or total) under its label."""
        prov = {k: figure.pop(k) for k in PROV_KEYS if k in figure}
        if not str(figure.get("label", "")).strip():
            raise InvalidValue("a published figure needs a label", field="label")
        if figure.get("total") is not None:
            check_amount(figure["total"], "total")
        if figure.get("money_kind") not in (*MONEY_KINDS, "envelope", "opened"):
            raise InvalidValue("unknown kind of money", field="money_kind")
        self._record(self.FigurePublished, prov, **figure)

    def select_laureate(self, **laureate: Any) -> None:
        """Record a laureate of an open call (with or without a known amount)."""
        prov = {k: laureate.pop(k) for k in PROV_KEYS if k in laureate}
        if laureate["call"] not in self.calls:
            raise UnknownCall(f"call {laureate['call']!r} is not open on this programme")
        if not str(laureate.get("name", "")).strip():
            raise InvalidValue("a laureate needs a name", field="name")
        self._record(self.LaureateSelected, prov, **laureate)

    def _check_date(self, prov: dict[str, Any]) -> None:
        check_effective_date(
            prov["effective_date"],
            today=prov["today"],
            registered_on=self.opened_on,
            correction=bool(prov.get("correction", False)),
            narrative=prov.get("narrative"),
        )

    def _record(
        self, event_class: type[FundingProgramme.Event], prov: dict[str, Any], **payload: Any
    ) -> None:
        check_effective_date(
            prov["effective_date"],
            today=prov.pop("today"),
            registered_on=self.opened_on,
            correction=bool(prov.get("correction", False)),
            narrative=prov.get("narrative"),
        )
        self.trigger_event(
            event_class,
            effective_date=prov["effective_date"],
            actor=prov["actor"],
            source=prov["source"],
            narrative=prov.get("narrative"),
            correction=bool(prov.get("correction", False)),
            **payload,
        )


PROV_KEYS = ("effective_date", "actor", "source", "narrative", "correction", "today")


def envelope_on(envelopes: list[tuple[date, Decimal]], day: date) -> Decimal | None:
    """The envelope of the latest revision effective on or before `day` (a correction dated
    before the opening is held to the first envelope)."""
    in_force = min(envelopes, key=lambda e: e[0])[1] if envelopes else None
    for when, amount in sorted(envelopes, key=lambda e: e[0]):
        if when <= day:
            in_force = amount
    return in_force


def first_breach(
    envelopes: list[tuple[date, Decimal]], awards: list[tuple[date, Decimal]]
) -> tuple[date, Decimal, Decimal] | None:
    """The first date on which committed exceeds the envelope in force: (day, committed, env)."""
    days = sorted({d for d, _ in envelopes} | {d for d, _ in awards})
    for day in days:
        committed = sum((a for d, a in awards if d <= day), Decimal(0))
        envelope = envelope_on(envelopes, day)
        if committed and (envelope is None or committed > envelope):
            return day, committed, envelope if envelope is not None else Decimal(0)
    return None


def _created_apply(self: FundingProgramme.Created, programme: Any) -> None:
    programme.name = self.name
    programme.envelope = self.envelope
    programme.currency = self.currency
    programme.calls = []
    programme.committed = Decimal(0)
    programme.awards = []
    programme.opened_on = self.effective_date
    programme.envelopes = [(self.effective_date, self.envelope)]
    programme.dated_awards = []
    programme.laureates = {}
    programme.figures = {}
    programme.other_funding = []


def _event_apply(self: FundingProgramme.Event, programme: Any) -> None:
    if isinstance(self, FundingProgramme.CallOpened):
        programme.calls.append(self.call)
    elif isinstance(self, FundingProgramme.FundingAwarded):
        programme.committed += self.amount
        programme.awards.append(
            {"project_id": self.project_id, "amount": self.amount, "call": self.call}
        )
        programme.dated_awards.append((self.effective_date, self.amount))
    elif isinstance(self, FundingProgramme.FundingEngaged | FundingProgramme.FundingDisbursed):
        kind = "engaged" if isinstance(self, FundingProgramme.FundingEngaged) else "disbursed"
        programme.other_funding.append(
            {"project_id": self.project_id, "amount": self.amount, "call": self.call, "kind": kind}
        )
    elif isinstance(self, FundingProgramme.EnvelopeRevised):
        programme.envelopes.append((self.effective_date, self.envelope))
        programme.envelope = envelope_on(programme.envelopes, date.max) or programme.envelope
    elif isinstance(self, FundingProgramme.FigurePublished):
        programme.figures[self.label] = {
            "total": self.total,
            "count": self.laureates_count,
            "on": self.effective_date,
        }
    elif isinstance(self, FundingProgramme.LaureateSelected):
        programme.laureates[self.laureate_id] = {
            "name": self.name,
            "call": self.call,
            "project_id": self.project_id,
        }


FundingProgramme.Created.apply = _created_apply  # type: ignore[method-assign,assignment]
FundingProgramme.Event.apply = _event_apply  # type: ignore[method-assign,assignment]
