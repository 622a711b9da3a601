"""Diff an edition against the projects' state: the domain commands that explain it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from domain.project import Project
from domain.values import PHASE_RANK, canonical_ministry
from importers.changes import (
    Change,
    DiscloseFigures,
    LeavePortfolio,
    ReestimateCost,
    ReestimateSchedule,
    Register,
    RejoinPortfolio,
    ReportStatus,
    ReviseDetails,
    TransitionPhase,
    WithholdFigures,
)
from importers.matching import normalise_name, project_id
from importers.model import Edition, ProjectRow


@dataclass(frozen=True)
class Command:
    """One domain command planned for a project: its registration or a change to it."""

    project_id: UUID
    name: str
    change: Register | Change
    narrative: str | None = None
    row: int | None = None

    @property
    def method(self) -> str:
        """The name of the command, e.g. `reestimate_cost`."""
        return self.change.method

    def describe(self) -> str:
        """`SIRHEN: reestimate_cost(amount=496400000)`, for messages."""
        given = self.change.args()
        args = ", ".join(f"{k}={v}" for k, v in given.items() if k != "changes")
        if "changes" in given:
            args = ", ".join(sorted(given["changes"]))
        return f"{self.name}: {self.method}({args})"


@dataclass
class EditionPlan:
    """The commands that take the portfolio from its state to what the edition shows."""

    edition: Edition
    commands: list[Command] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def count(self, *kinds: type[Register | Change]) -> int:
        """How many distinct projects get one of these kinds of command."""
        return len({c.project_id for c in self.commands if isinstance(c.change, kinds)})

    @property
    def changed(self) -> int:
        """Projects already known that get any change other than leaving."""
        new = {c.project_id for c in self.commands if isinstance(c.change, Register)}
        return len(
            {
                c.project_id
                for c in self.commands
                if c.project_id not in new and not isinstance(c.change, LeavePortfolio)
            }
        )


def plan_edition(
    edition: Edition, known: Mapping[UUID, Project], last_report: Mapping[UUID, date]
) -> EditionPlan:
    """Plan one edition against the series' projects (their state at the edition's date)."""
    plan = EditionPlan(edition)
    listed: set[UUID] = set()
    for row in edition.projects.values():
        pid = row.project_id or project_id(edition.series, row.key)
        listed.add(pid)
        project = known.get(pid)
        if project is None:
            _plan_new(plan, pid, row)
        elif project.closed:
            plan.warnings.append(f"{_where(edition, row)}: {row.name} is closed; row ignored")
        else:
            _plan_existing(plan, pid, row, project, last_report.get(pid))
    gone = [(p.name, pid) for pid, p in known.items() if pid not in listed]
    for name, pid in sorted(gone, key=lambda item: normalise_name(item[0])):
        project = known[pid]
        if project.in_portfolio and not project.closed:
            narrative = f"not listed in {edition.source}"
            plan.commands.append(Command(pid, name, LeavePortfolio(), narrative=narrative))
    return plan


def _where(edition: Edition, row: ProjectRow) -> str:
    return f"{edition.file}, {edition.record} {row.row}"


def _plan_new(plan: EditionPlan, pid: UUID, row: ProjectRow) -> None:
    edition = plan.edition
    args = dict(row.details)
    args["phase"] = row.phase or edition.default_phase
    args["planned_end"] = row.planned_end
    if not row.withheld:
        args["cost"] = row.cost
    add = plan.commands.append
    narrative = None if row.phase else f"phase not published in {edition.source}"
    add(Command(pid, row.name, Register(args), narrative, row.row))
    if row.withheld:
        add(Command(pid, row.name, WithholdFigures(), row.withheld_reason, row.row))
    if row.rating:
        _report(plan, pid, row)


def _plan_existing(
    plan: EditionPlan, pid: UUID, row: ProjectRow, project: Project, reported_on: date | None
) -> None:
    source = plan.edition.source

    def add(change: Change, narrative: str | None = None) -> None:
        plan.commands.append(Command(pid, row.name, change, narrative, row.row))

    if not project.in_portfolio:
        add(RejoinPortfolio(), f"listed again in {source}")
    changes = {
        name: value
        for name, value in _as_recorded(row.details).items()
        # a start date that is no longer published is kept
        if not (name == "start_date" and value is None) and getattr(project, name) != value
    }
    if changes:
        add(ReviseDetails(changes))
    # A cost that is no longer published (the 2019 sentence, or a blank cost after an
    # estimate) is recorded as withheld: the estimate is kept, not shown.
    hidden = row.withheld or (row.cost is None and project.current_cost is not None)
    if hidden and not project.figures_withheld:
        add(WithholdFigures(), row.withheld_reason or f"no cost published in {source}")
    elif not hidden and project.figures_withheld:
        add(DiscloseFigures(), f"figures published again in {source}")
    if row.phase and row.phase != project.phase:
        backwards = PHASE_RANK[row.phase] < PHASE_RANK[project.phase]
        why = f"{source} publishes phase {row.phase!r} after {project.phase!r}"
        add(TransitionPhase(row.phase), why if backwards else None)
    if not row.withheld and row.cost is not None and row.cost != project.current_cost:
        add(ReestimateCost(row.cost), row.narratives.get("cost"))
    if row.planned_end is not None and row.planned_end != project.planned_end:
        add(ReestimateSchedule(row.planned_end), row.narratives.get("schedule"))
    if row.rating and (row.rating != project.rating or reported_on != plan.edition.date):
        _report(plan, pid, row)


def _as_recorded(details: Mapping[str, Any]) -> dict[str, Any]:
    """A row's details as the project records them: its ministry code canonical (MAr: MAR)."""
    recorded = dict(details)
    if isinstance(recorded.get("ministry_code"), str):
        recorded["ministry_code"] = canonical_ministry(recorded["ministry_code"])
    return recorded


def _report(plan: EditionPlan, pid: UUID, row: ProjectRow) -> None:
    narrative = row.narratives.get("status") or f"rated {row.rating} in {plan.edition.source}"
    assert row.rating is not None
    plan.commands.append(Command(pid, row.name, ReportStatus(row.rating), narrative, row.row))


def project_as_of(events: Sequence[Any], as_of: date) -> Project | None:
    """Replay a project's events whose effective date is on or before `as_of`."""
    if not events or events[0].effective_date > as_of:
        return None
    project: Project = events[0].mutate(None)
    later = sorted(
        (e for e in events[1:] if e.effective_date <= as_of), key=lambda e: e.effective_date
    )
    for event in later:
        event.apply(project)
    return project


def last_report_as_of(events: Sequence[Any], as_of: date | None = None) -> date | None:
    """The effective date of the latest status report on or before `as_of` (None: ever)."""
    dates = [
        e.effective_date
        for e in events
        if isinstance(e, Project.StatusReported) and (as_of is None or e.effective_date <= as_of)
    ]
    return max(dates, default=None)
