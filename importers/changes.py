"""The typed domain commands an import plans: a registration, or one change to a project."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from domain.project import Project
from domain.values import Provenance


@dataclass(frozen=True)
class Register:
    """Register a project with the details, phase, figures an edition publishes for it."""

    method: ClassVar[str] = "register"
    details: dict[str, Any]

    def register(self, project_id: UUID, provenance: Provenance, today: date) -> Project:
        """The new project (its registration is pending, not yet saved)."""
        return Project.register(id=project_id, **self.details, provenance=provenance, today=today)

    def args(self) -> dict[str, Any]:
        """The command's arguments, for messages."""
        return dict(self.details)


class Change:
    """One command on a known project, named after the Project method it calls."""

    method: ClassVar[str]

    def apply(self, project: Project, provenance: Provenance, today: date) -> None:
        """Call the project's command method (its event is pending, not yet saved)."""
        raise NotImplementedError

    def args(self) -> dict[str, Any]:
        """The command's arguments, for messages."""
        return dict(vars(self))


@dataclass(frozen=True)
class ReviseDetails(Change):
    method: ClassVar[str] = "revise_details"
    changes: dict[str, Any]

    def apply(self, project: Project, provenance: Provenance, today: date) -> None:
        project.revise_details(self.changes, provenance=provenance, today=today)


@dataclass(frozen=True)
class TransitionPhase(Change):
    method: ClassVar[str] = "transition_phase"
    phase: str

    def apply(self, project: Project, provenance: Provenance, today: date) -> None:
        project.transition_phase(self.phase, provenance=provenance, today=today)


@dataclass(frozen=True)
class ReestimateCost(Change):
    method: ClassVar[str] = "reestimate_cost"
    amount: Decimal

    def apply(self, project: Project, provenance: Provenance, today: date) -> None:
        project.reestimate_cost(self.amount, provenance=provenance, today=today)


@dataclass(frozen=True)
class ReestimateSchedule(Change):
    method: ClassVar[str] = "reestimate_schedule"
    planned_end: date

    def apply(self, project: Project, provenance: Provenance, today: date) -> None:
        project.reestimate_schedule(self.planned_end, provenance=provenance, today=today)


@dataclass(frozen=True)
class ReportStatus(Change):
    method: ClassVar[str] = "report_status"
    rating: str

    def apply(self, project: Project, provenance: Provenance, today: date) -> None:
        project.report_status(self.rating, provenance=provenance, today=today)


@dataclass(frozen=True)
class WithholdFigures(Change):
    method: ClassVar[str] = "withhold_figures"

    def apply(self, project: Project, provenance: Provenance, today: date) -> None:
        project.withhold_figures(provenance=provenance, today=today)


@dataclass(frozen=True)
class DiscloseFigures(Change):
    method: ClassVar[str] = "disclose_figures"

    def apply(self, project: Project, provenance: Provenance, today: date) -> None:
        project.disclose_figures(provenance=provenance, today=today)


@dataclass(frozen=True)
class LeavePortfolio(Change):
    method: ClassVar[str] = "leave_portfolio"

    def apply(self, project: Project, provenance: Provenance, today: date) -> None:
        project.leave_portfolio(provenance=provenance, today=today)


@dataclass(frozen=True)
class RejoinPortfolio(Change):
    method: ClassVar[str] = "rejoin_portfolio"

    def apply(self, project: Project, provenance: Provenance, today: date) -> None:
        project.rejoin_portfolio(provenance=provenance, today=today)
