"""The FundingProgramme aggregate (e.g. FTAP): an envelope, calls and awards."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import CallAlreadyOpen, EnvelopeOverCommitted, InvalidValue, UnknownCall
from domain.values import EventProvenance, Provenance, check_amount, check_effective_date


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

    class CallOpened(Event):
        call: str

        def apply(self, aggregate: FundingProgramme) -> None:
            aggregate.calls.append(self.call)

    class FundingAwarded(Event):
        project_id: UUID
        amount: Decimal
        call: str | None

        def apply(self, aggregate: FundingProgramme) -> None:
            aggregate.committed += self.amount
            aggregate.awards.append(
                {"project_id": self.project_id, "amount": self.amount, "call": self.call}
            )

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
            id=cls.create_id(),
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

    def award(
        self,
        project_id: UUID,
        amount: Decimal,
        call: str | None,
        *,
        provenance: Provenance,
        today: date,
    ) -> None:
        """Award funding to a project; the envelope can never be over-committed."""
        check_amount(amount)
        if call is not None and call not in self.calls:
            raise UnknownCall(f"call {call!r} is not open on this programme")
        if self.committed + amount > self.envelope:
            raise EnvelopeOverCommitted(
                f"awarding {amount} would over-commit the envelope: "
                f"{self.available} left of {self.envelope}"
            )
        self._record(
            self.FundingAwarded,
            provenance,
            today,
            project_id=project_id,
            amount=amount,
            call=call,
        )

    def _record(
        self,
        event_class: type[FundingProgramme.Event],
        provenance: Provenance,
        today: date,
        **payload: Any,
    ) -> None:
        check_effective_date(
            provenance.effective_date,
            today=today,
            registered_on=self.opened_on,
            correction=provenance.correction,
            narrative=provenance.narrative,
        )
        self.trigger_event(
            event_class,
            effective_date=provenance.effective_date,
            actor=provenance.actor,
            source=provenance.source,
            narrative=provenance.narrative,
            correction=provenance.correction,
            **payload,
        )
