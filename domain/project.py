"""The Project aggregate: one stream of immutable events per major digital project."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

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
from domain.values import (
    CLOSURE_OUTCOMES,
    PHASE_RANK,
    canonical_ministry,
    check_amount,
    check_effective_date,
    check_phase,
    check_rating,
    require_narrative,
)
from domain.values import (
    EventProvenance as Provenance,
)

DETAIL_FIELDS: tuple[str, ...] = (
    "name",
    "ministry_code",
    "ministry_name",
    "description",
    "interministerial",
    "functional_zone",
    "programmes",
    "links",
    "start_date",
)


class Project(Aggregate):
    """A major digital project followed by the portfolio."""

    class Event(Aggregate.Event, Provenance):
        pass

    class Registered(Aggregate.Created, Provenance):
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

    class DetailsRevised(Event):
        changes: dict[str, Any]

    class PhaseTransitioned(Event):
        phase: str
        previous_phase: str

    class CostReestimated(Event):
        amount: Decimal

    class ScheduleReestimated(Event):
        planned_end: date

    class Rebaselined(Event):
        baseline_cost: Decimal | None
        baseline_end: date | None
        approver: str
        reason: str

    class FundingAwarded(Event):
        programme_id: UUID
        amount: Decimal
        call: str | None

    class StatusReported(Event):
        rating: str

    class FiguresWithheld(Event):
        pass

    class FiguresDisclosed(Event):
        pass

    class LeftPortfolio(Event):
        pass

    class RejoinedPortfolio(Event):
        pass

    class Closed(Event):
        outcome: str

    class Reopened(Event):
        pass

    def __init__(self, **_: Any) -> None:  # state is set by Registered.apply
        pass

    # -- state -------------------------------------------------------------------------------
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
    baseline_cost: Decimal | None
    current_cost: Decimal | None
    baseline_end: date | None
    planned_end: date | None
    rating: str | None
    funding_received: Decimal
    in_portfolio: bool
    figures_withheld: bool
    closed: bool
    outcome: str | None
    registered_on: date

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
        effective_date: date,
        actor: str,
        source: str,
        narrative: str | None = None,
        today: date,
    ) -> Project:
        """Register a new project in the portfolio."""
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
            effective_date, today=today, registered_on=None, correction=False, narrative=None
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
            effective_date=effective_date,
            actor=actor,
            source=source,
            narrative=narrative,
            correction=False,
        )

    def revise_details(self, changes: dict[str, Any], **prov: Any) -> None:
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
        self._record(self.DetailsRevised, prov, changes=effective)

    def transition_phase(self, phase: str, **prov: Any) -> None:
        """Move to another phase: forward may skip phases, backward needs a narrative."""
        check_phase(phase)
        if phase == self.phase:
            raise PhaseTransitionNotAllowed(f"the project is already in phase {phase!r}")
        if PHASE_RANK[phase] < PHASE_RANK[self.phase] and not (prov.get("narrative") or "").strip():
            raise PhaseTransitionNotAllowed(
                f"moving back from {self.phase!r} to {phase!r} needs a narrative",
                field="narrative",
            )
        self._record(self.PhaseTransitioned, prov, phase=phase, previous_phase=self.phase)

    def reestimate_cost(self, amount: Decimal, **prov: Any) -> None:
        """Record a new estimate of the project's total cost."""
        self._record(self.CostReestimated, prov, amount=check_amount(amount))

    def reestimate_schedule(self, planned_end: date, **prov: Any) -> None:
        """Record a new planned end date."""
        if self.start_date is not None and planned_end < self.start_date:
            raise InvalidValue("planned_end is before the project's start", field="planned_end")
        self._record(self.ScheduleReestimated, prov, planned_end=planned_end)

    def rebaseline(
        self,
        *,
        baseline_cost: Decimal | None,
        baseline_end: date | None,
        approver: str,
        reason: str,
        **prov: Any,
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
            prov,
            baseline_cost=baseline_cost,
            baseline_end=baseline_end,
            approver=approver,
            reason=reason,
        )

    def receive_funding(
        self, programme_id: UUID, amount: Decimal, call: str | None, **prov: Any
    ) -> None:
        """Record funding awarded by a programme (saved atomically with the programme)."""
        self._record(
            self.FundingAwarded,
            prov,
            programme_id=programme_id,
            amount=check_amount(amount),
            call=call,
        )

    def report_status(self, rating: str, **prov: Any) -> None:
        """Record a RAG / météo rating; a Red rating needs a narrative."""
        check_rating(rating)
        if rating == "Red":
            require_narrative(prov.get("narrative"), "a Red rating")
        self._record(self.StatusReported, prov, rating=rating)

    def withhold_figures(self, **prov: Any) -> None:
        """Stop publishing the project's figures (they are kept, not erased)."""
        if self.figures_withheld:
            raise FiguresAlreadyWithheld("the project's figures are already withheld")
        self._record(self.FiguresWithheld, prov)

    def disclose_figures(self, **prov: Any) -> None:
        """Publish the project's figures again."""
        if not self.figures_withheld:
            raise FiguresNotWithheld("the project's figures are not withheld")
        self._record(self.FiguresDisclosed, prov)

    def leave_portfolio(self, **prov: Any) -> None:
        """Record that the project is no longer followed by the portfolio."""
        if not self.in_portfolio:
            raise NotInPortfolio("the project has already left the portfolio")
        self._record(self.LeftPortfolio, prov)

    def rejoin_portfolio(self, **prov: Any) -> None:
        """Record that the project is followed by the portfolio again."""
        if self.in_portfolio:
            raise AlreadyInPortfolio("the project is already in the portfolio")
        self._record(self.RejoinedPortfolio, prov)

    def close(self, outcome: str, **prov: Any) -> None:
        """Close the project, completed or abandoned: it then accepts only a reopening."""
        if outcome not in CLOSURE_OUTCOMES:
            raise InvalidValue(f"outcome must be one of {CLOSURE_OUTCOMES}", field="outcome")
        self._record(self.Closed, prov, outcome=outcome)

    def reopen(self, **prov: Any) -> None:
        """Reopen a closed project; it needs a narrative."""
        if not self.closed:
            raise ProjectNotClosed("the project is not closed")
        require_narrative(prov.get("narrative"), "a reopening")
        self._record(self.Reopened, prov, _allow_closed=True)

    # -- helpers -----------------------------------------------------------------------------
    def _record(
        self, event_class: type[Project.Event], prov: dict[str, Any], **payload: Any
    ) -> None:
        allow_closed = payload.pop("_allow_closed", False)
        if self.closed and not allow_closed:
            raise ProjectIsClosed("the project is closed: only a reopening is accepted")
        today: date = prov.pop("today")
        correction = bool(prov.get("correction", False))
        narrative = prov.get("narrative")
        check_effective_date(
            prov["effective_date"],
            today=today,
            registered_on=self.registered_on,
            correction=correction,
            narrative=narrative,
        )
        self.trigger_event(
            event_class,
            effective_date=prov["effective_date"],
            actor=prov["actor"],
            source=prov["source"],
            narrative=narrative,
            correction=correction,
            **payload,
        )


def _apply_registered(event: Project.Registered, project: Project) -> None:
    for field in DETAIL_FIELDS:
        setattr(project, field, getattr(event, field))
    project.phase = event.phase
    project.baseline_cost = project.current_cost = event.cost
    project.baseline_end = project.planned_end = event.planned_end
    project.rating = None
    project.funding_received = Decimal(0)
    project.in_portfolio = True
    project.figures_withheld = False
    project.closed = False
    project.outcome = None
    project.registered_on = event.effective_date


def _apply(event: Project.Event, project: Project) -> None:
    """Change the aggregate's current state (recording order, current knowledge)."""
    if isinstance(event, Project.DetailsRevised):
        for field, value in event.changes.items():
            setattr(project, field, value)
    elif isinstance(event, Project.PhaseTransitioned):
        project.phase = event.phase
    elif isinstance(event, Project.CostReestimated):
        project.current_cost = event.amount
        if project.baseline_cost is None:
            project.baseline_cost = event.amount
    elif isinstance(event, Project.ScheduleReestimated):
        project.planned_end = event.planned_end
        if project.baseline_end is None:
            project.baseline_end = event.planned_end
    elif isinstance(event, Project.Rebaselined):
        if event.baseline_cost is not None:
            project.baseline_cost = event.baseline_cost
        if event.baseline_end is not None:
            project.baseline_end = event.baseline_end
    elif isinstance(event, Project.FundingAwarded):
        project.funding_received += event.amount
    elif isinstance(event, Project.StatusReported):
        project.rating = event.rating
    elif isinstance(event, Project.FiguresWithheld):
        project.figures_withheld = True
    elif isinstance(event, Project.FiguresDisclosed):
        project.figures_withheld = False
    elif isinstance(event, Project.LeftPortfolio):
        project.in_portfolio = False
    elif isinstance(event, Project.RejoinedPortfolio):
        project.in_portfolio = True
    elif isinstance(event, Project.Closed):
        project.closed = True
        project.outcome = event.outcome
    elif isinstance(event, Project.Reopened):
        project.closed = False
        project.outcome = None


def _registered_apply(self: Project.Registered, aggregate: Any) -> None:
    _apply_registered(self, aggregate)


def _event_apply(self: Project.Event, aggregate: Any) -> None:
    _apply(self, aggregate)


Project.Registered.apply = _registered_apply  # type: ignore[method-assign,assignment]
Project.Event.apply = _event_apply  # type: ignore[method-assign,assignment]
