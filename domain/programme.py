"""The FundingProgramme aggregate (e.g. FTAP): an envelope, calls and awards."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import CallAlreadyOpen, EnvelopeOverCommitted, InvalidValue, UnknownCall
from domain.values import EventProvenance as Provenance
from domain.values import check_amount, check_effective_date


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
        project_id: UUID
        amount: Decimal
        call: str | None

    def __init__(self, **_: Any) -> None:  # state is set by Created.apply
        pass

    name: str
    envelope: Decimal
    currency: str
    calls: list[str]
    committed: Decimal
    awards: list[dict[str, Any]]
    opened_on: date

    @classmethod
    def create(
        cls,
        *,
        name: str,
        envelope: Decimal,
        currency: str = "EUR",
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
            id=cls.create_id(),
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

    def award(self, project_id: UUID, amount: Decimal, call: str | None, **prov: Any) -> None:
        """Award funding to a project; the envelope can never be over-committed."""
        check_amount(amount)
        if call is not None and call not in self.calls:
            raise UnknownCall(f"call {call!r} is not open on this programme")
        if self.committed + amount > self.envelope:
            raise EnvelopeOverCommitted(
                f"awarding {amount} would over-commit the envelope: "
                f"{self.available} left of {self.envelope}"
            )
        self._record(self.FundingAwarded, prov, project_id=project_id, amount=amount, call=call)

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


def _created_apply(self: FundingProgramme.Created, programme: Any) -> None:
    programme.name = self.name
    programme.envelope = self.envelope
    programme.currency = self.currency
    programme.calls = []
    programme.committed = Decimal(0)
    programme.awards = []
    programme.opened_on = self.effective_date


def _event_apply(self: FundingProgramme.Event, programme: Any) -> None:
    if isinstance(self, FundingProgramme.CallOpened):
        programme.calls.append(self.call)
    elif isinstance(self, FundingProgramme.FundingAwarded):
        programme.committed += self.amount
        programme.awards.append(
            {"project_id": self.project_id, "amount": self.amount, "call": self.call}
        )


FundingProgramme.Created.apply = _created_apply  # type: ignore[method-assign,assignment]
FundingProgramme.Event.apply = _event_apply  # type: ignore[method-assign,assignment]
