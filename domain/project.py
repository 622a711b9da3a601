"""The Project aggregate: one stream of immutable events per major digital project."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.copying import CheapDeepCopy
from domain.errors import (
    AlreadyInPortfolio,
    FiguresAlreadyWithheld,
    FiguresNotWithheld,
    InvalidValue,
    NothingChanged,
    NotInPortfolio,
    PhaseTransitionNotAllowed,
    ProjectIsClosed,
    ProjectNotClosed,
)
from domain.project_facts import DETAIL_FIELDS, ProjectFacts
from domain.values import (
    CLOSURE_OUTCOMES,
    PHASE_RANK,
    EventProvenance,
    Provenance,
    canonical_ministry,
    check_amount,
    check_effective_date,
    check_phase,
    check_rating,
    require_narrative,
)

__all__ = ["DETAIL_FIELDS", "Project"]


class Project(CheapDeepCopy, Aggregate, ProjectFacts):
    """A major digital project followed by the portfolio (its state: ProjectFacts)."""

    class Event(Aggregate.Event, EventProvenance):
        def apply(self, aggregate: ProjectFacts) -> None:
            """Change a project's facts (the aggregate's, or a read model's fold)."""

    class Registered(Aggregate.Created, EventProvenance):
        name: str
        ministry_code: str
        ministry_name: str | None
        description: str | None
        interministerial: bool
        functional_zone: str | None
        programmes: list[str]
        links: list[str]
        start_date: date | None
        phase: str
        cost: Decimal | None
        planned_end: date | None

        def apply(self, aggregate: ProjectFacts) -> None:
            for name in DETAIL_FIELDS:
                setattr(aggregate, name, getattr(self, name))
            aggregate.phase = self.phase
            aggregate.baseline_cost = aggregate.current_cost = self.cost
            aggregate.baseline_end = aggregate.planned_end = self.planned_end
            aggregate.rating = None
            aggregate.funding_received = Decimal(0)
            aggregate.in_portfolio = True
            aggregate.figures_withheld = False
            aggregate.closed = False
            aggregate.outcome = None
            aggregate.registered_on = self.effective_date

    class DetailsRevised(Event):
        changes: dict[str, Any]

        def apply(self, aggregate: ProjectFacts) -> None:
            for name, value in self.changes.items():
                setattr(aggregate, name, value)

    class PhaseTransitioned(Event):
        phase: str
        previous_phase: str

        def apply(self, aggregate: ProjectFacts) -> None:
            aggregate.phase = self.phase

    class CostReestimated(Event):
        amount: Decimal

        def apply(self, aggregate: ProjectFacts) -> None:
            aggregate.current_cost = self.amount
            if aggregate.baseline_cost is None:
                aggregate.baseline_cost = self.amount

    class ScheduleReestimated(Event):
        planned_end: date

        def apply(self, aggregate: ProjectFacts) -> None:
            aggregate.planned_end = self.planned_end
            if aggregate.baseline_end is None:
                aggregate.baseline_end = self.planned_end

    class Rebaselined(Event):
        baseline_cost: Decimal | None
        baseline_end: date | None
        approver: str
        reason: str

        def apply(self, aggregate: ProjectFacts) -> None:
            if self.baseline_cost is not None:
                aggregate.baseline_cost = self.baseline_cost
            if self.baseline_end is not None:
                aggregate.baseline_end = self.baseline_end

    class FundingAwarded(Event):
        programme_id: UUID
        amount: Decimal
        call: str | None

        def apply(self, aggregate: ProjectFacts) -> None:
            aggregate.funding_received += self.amount

    class StatusReported(Event):
        rating: str

        def apply(self, aggregate: ProjectFacts) -> None:
            aggregate.rating = self.rating

    class FiguresWithheld(Event):
        def apply(self, aggregate: ProjectFacts) -> None:
            aggregate.figures_withheld = True

    class FiguresDisclosed(Event):
        def apply(self, aggregate: ProjectFacts) -> None:
            aggregate.figures_withheld = False

    class LeftPortfolio(Event):
        def apply(self, aggregate: ProjectFacts) -> None:
            aggregate.in_portfolio = False

    class RejoinedPortfolio(Event):
        def apply(self, aggregate: ProjectFacts) -> None:
            aggregate.in_portfolio = True

    class Closed(Event):
        outcome: str

        def apply(self, aggregate: ProjectFacts) -> None:
            aggregate.closed = True
            aggregate.outcome = self.outcome

    class Reopened(Event):
        def apply(self, aggregate: ProjectFacts) -> None:
            aggregate.closed = False
            aggregate.outcome = None

    def __init__(self, **_: Any) -> None:  # state is set by Registered.apply
        pass

    # -- commands ----------------------------------------------------------------------------
    @classmethod
    def register(
        cls,
        *,
        id: UUID | None = None,  # noqa: A002
        name: str,
        ministry_code: str,
        ministry_name: str | None = None,
        description: str | None = None,
        interministerial: bool = False,
        functional_zone: str | None = None,
        programmes: list[str] | None = None,
        links: list[str] | None = None,
        start_date: date | None = None,
        phase: str = "Cadrage",
        cost: Decimal | None = None,
        planned_end: date | None = None,
        provenance: Provenance,
        today: date,
    ) -> Project:
        """Register a new project in the portfolio (a registration is never a correction)."""
        if not name.strip():
            raise InvalidValue("name must not be blank", field="name")
        if not ministry_code.strip():
            raise InvalidValue("ministry_code must not be blank", field="ministry_code")
        check_phase(phase)
        if cost is not None:
            check_amount(cost, "cost")
        if start_date and planned_end and planned_end < start_date:
            raise InvalidValue("planned_end is before start_date", field="planned_end")
        check_effective_date(
            provenance.effective_date,
            today=today,
            registered_on=None,
            correction=False,
            narrative=None,
        )
        return cls._create(
            cls.Registered,
            id=id if id is not None else cls.create_id(),
            name=name,
            ministry_code=canonical_ministry(ministry_code),
            ministry_name=ministry_name,
            description=description,
            interministerial=interministerial,
            functional_zone=functional_zone,
            programmes=list(programmes or []),
            links=list(links or []),
            start_date=start_date,
            phase=phase,
            cost=cost,
            planned_end=planned_end,
            effective_date=provenance.effective_date,
            actor=provenance.actor,
            source=provenance.source,
            narrative=provenance.narrative,
            correction=False,
        )

    def revise_details(
        self, changes: dict[str, Any], *, provenance: Provenance, today: date
    ) -> None:
        """Record new identity details (name, ministry, description, ...)."""
        unknown = sorted(set(changes) - set(DETAIL_FIELDS))
        if unknown:
            raise InvalidValue(f"unknown detail fields {unknown}", field=unknown[0])
        if "name" in changes and not str(changes["name"] or "").strip():
            raise InvalidValue("name must not be blank", field="name")
        if "ministry_code" in changes and not str(changes["ministry_code"] or "").strip():
            raise InvalidValue("ministry_code must not be blank", field="ministry_code")
        if "ministry_code" in changes:
            changes = changes | {"ministry_code": canonical_ministry(changes["ministry_code"])}
        effective = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if not effective:
            raise NothingChanged("the revision changes none of the project's details")
        self._record(self.DetailsRevised, provenance, today, changes=effective)

    def transition_phase(self, phase: str, *, provenance: Provenance, today: date) -> None:
        """Move to another phase: forward may skip phases, backward needs a narrative."""
        check_phase(phase)
        if phase == self.phase:
            raise PhaseTransitionNotAllowed(f"the project is already in phase {phase!r}")
        if PHASE_RANK[phase] < PHASE_RANK[self.phase] and not (provenance.narrative or "").strip():
            raise PhaseTransitionNotAllowed(
                f"moving back from {self.phase!r} to {phase!r} needs a narrative",
                field="narrative",
            )
        self._record(
            self.PhaseTransitioned, provenance, today, phase=phase, previous_phase=self.phase
        )

    def reestimate_cost(self, amount: Decimal, *, provenance: Provenance, today: date) -> None:
        """Record a new estimate of the project's total cost."""
        self._record(self.CostReestimated, provenance, today, amount=check_amount(amount))

    def reestimate_schedule(
        self, planned_end: date, *, provenance: Provenance, today: date
    ) -> None:
        """Record a new planned end date."""
        if self.start_date is not None and planned_end < self.start_date:
            raise InvalidValue("planned_end is before the project's start", field="planned_end")
        self._record(self.ScheduleReestimated, provenance, today, planned_end=planned_end)

    def rebaseline(
        self,
        *,
        baseline_cost: Decimal | None,
        baseline_end: date | None,
        approver: str,
        reason: str,
        provenance: Provenance,
        today: date,
    ) -> None:
        """Replace the baseline cost and/or end date, with an approver and a reason."""
        if baseline_cost is None and baseline_end is None:
            raise InvalidValue("a rebaseline sets baseline_cost, baseline_end or both")
        if baseline_cost is not None:
            check_amount(baseline_cost, "baseline_cost")
        if not approver.strip():
            raise InvalidValue("a rebaseline needs an approver", field="approver")
        if not reason.strip():
            raise InvalidValue("a rebaseline needs a reason", field="reason")
        self._record(
            self.Rebaselined,
            provenance,
            today,
            baseline_cost=baseline_cost,
            baseline_end=baseline_end,
            approver=approver,
            reason=reason,
        )

    def receive_funding(
        self,
        programme_id: UUID,
        amount: Decimal,
        call: str | None,
        *,
        provenance: Provenance,
        today: date,
    ) -> None:
        """Record funding awarded by a programme (saved atomically with the programme)."""
        self._record(
            self.FundingAwarded,
            provenance,
            today,
            programme_id=programme_id,
            amount=check_amount(amount),
            call=call,
        )

    def report_status(self, rating: str, *, provenance: Provenance, today: date) -> None:
        """Record a RAG / météo rating; a Red rating needs a narrative."""
        check_rating(rating)
        if rating == "Red":
            require_narrative(provenance.narrative, "a Red rating")
        self._record(self.StatusReported, provenance, today, rating=rating)

    def withhold_figures(self, *, provenance: Provenance, today: date) -> None:
        """Stop publishing the project's figures (they are kept, not erased)."""
        if self.figures_withheld:
            raise FiguresAlreadyWithheld("the project's figures are already withheld")
        self._record(self.FiguresWithheld, provenance, today)

    def disclose_figures(self, *, provenance: Provenance, today: date) -> None:
        """Publish the project's figures again."""
        if not self.figures_withheld:
            raise FiguresNotWithheld("the project's figures are not withheld")
        self._record(self.FiguresDisclosed, provenance, today)

    def leave_portfolio(self, *, provenance: Provenance, today: date) -> None:
        """Record that the project is no longer followed by the portfolio."""
        if not self.in_portfolio:
            raise NotInPortfolio("the project has already left the portfolio")
        self._record(self.LeftPortfolio, provenance, today)

    def rejoin_portfolio(self, *, provenance: Provenance, today: date) -> None:
        """Record that the project is followed by the portfolio again."""
        if self.in_portfolio:
            raise AlreadyInPortfolio("the project is already in the portfolio")
        self._record(self.RejoinedPortfolio, provenance, today)

    def close(self, outcome: str, *, provenance: Provenance, today: date) -> None:
        """Close the project, completed or abandoned: it then accepts only a reopening."""
        if outcome not in CLOSURE_OUTCOMES:
            raise InvalidValue(f"outcome must be one of {CLOSURE_OUTCOMES}", field="outcome")
        self._record(self.Closed, provenance, today, outcome=outcome)

    def reopen(self, *, provenance: Provenance, today: date) -> None:
        """Reopen a closed project; it needs a narrative."""
        if not self.closed:
            raise ProjectNotClosed("the project is not closed")
        require_narrative(provenance.narrative, "a reopening")
        self._record(self.Reopened, provenance, today, allow_closed=True)

    # -- helpers -----------------------------------------------------------------------------
    def _record(
        self,
        event_class: type[Project.Event],
        provenance: Provenance,
        today: date,
        *,
        allow_closed: bool = False,
        **payload: Any,
    ) -> None:
        if self.closed and not allow_closed:
            raise ProjectIsClosed("the project is closed: only a reopening is accepted")
        check_effective_date(
            provenance.effective_date,
            today=today,
            registered_on=self.registered_on,
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
