"""Execute the plans of a whole import in memory, then save every project in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.persistence import RecordConflictError

from domain.application import Portfolio
from domain.errors import DomainError
from domain.project import Project
from importers.errors import BackdatedEdition, ImportConflict, ImportRejected
from importers.model import Edition
from importers.plan import Command, last_report_as_of, plan_edition, project_as_of
from importers.reference import check_currency, unknown_ministries

ACTOR = "import"
PAGE = 500


@dataclass
class ImportSummary:
    """What an import did (or, for a dry run, would do)."""

    editions: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already imported: nothing to record
    registered: int = 0
    changed: int = 0
    left: int = 0
    rejoined: int = 0
    events: int = 0
    seconds: float = 0.0
    position: int | None = None
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A human summary, one line per fact."""
        lines = [
            f"editions imported: {', '.join(self.editions) or 'none'}",
            f"editions already imported (nothing to record): {', '.join(self.skipped) or 'none'}",
            f"projects registered: {self.registered}, changed: {self.changed}, "
            f"left: {self.left}, rejoined: {self.rejoined}",
            (
                f"events that would be recorded: {self.events} (dry run: nothing recorded)"
                if self.dry_run
                else f"events recorded: {self.events}"
            )
            + f" in {self.seconds:.2f} s",
        ]
        if self.position is not None:
            lines.append(f"last notification position: {self.position}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return lines


def load_history(portfolio: Portfolio, series: str) -> dict[UUID, list[Any]]:
    """Every stored event of the series' projects, by project, in recording order."""
    streams: dict[UUID, list[Any]] = {}
    start, inclusive = 1, True
    while True:
        page = portfolio.recorder.select_notifications(
            start=start, limit=PAGE, inclusive_of_start=inclusive
        )
        for notification in page:
            event = portfolio.mapper.to_domain_event(notification)
            if isinstance(event, Project.Registered | Project.Event):
                streams.setdefault(event.originator_id, []).append(event)
        if len(page) < PAGE:
            break
        start, inclusive = page[-1].id, False
    prefix = f"{series}:"
    return {
        pid: events
        for pid, events in streams.items()
        if isinstance(events[0], Project.Registered) and events[0].source.startswith(prefix)
    }


def import_editions(
    portfolio: Portfolio,
    editions: Sequence[Edition],
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Record what the editions say, oldest first, in one atomic save; refuse on any doubt.

    `progress(done, total)` is told after each edition (the CLI draws a bar with it)."""
    began = time.monotonic()
    summary = ImportSummary(dry_run=dry_run)
    ordered = _check(editions, portfolio.today())
    if not ordered:
        return summary
    check_currency(portfolio, ordered)
    reference, reference_warnings = unknown_ministries(portfolio, ordered)
    series = ordered[0].series
    history = load_history(portfolio, series)
    live: dict[UUID, Project] = {pid: _replay(events) for pid, events in history.items()}
    reported = {pid: last_report_as_of(events) for pid, events in history.items()}
    dates = [
        e.effective_date
        for events in history.values()
        for e in events
        if e.source.startswith(f"{series}:")
    ]
    newest: date | None = max(dates, default=None)
    touched: dict[UUID, Project] = {}
    for done, edition in enumerate(ordered, start=1):
        if progress is not None:
            progress(done - 1, len(ordered))
        summary.warnings.extend(edition.warnings)
        if newest is not None and edition.date < newest:
            _check_already_imported(edition, history, newest)
            summary.skipped.append(edition.source)
            continue
        plan = plan_edition(edition, live, {k: v for k, v in reported.items() if v})
        summary.warnings.extend(plan.warnings)
        for command in plan.commands:
            project = _apply(command, edition, live, portfolio.today())
            touched[project.id] = project
            if command.method == "report_status":
                reported[project.id] = edition.date
        (summary.editions if plan.commands else summary.skipped).append(edition.source)
        summary.registered += plan.count("register")
        summary.left += plan.count("leave_portfolio")
        summary.rejoined += plan.count("rejoin_portfolio")
        summary.changed += plan.changed
        newest = edition.date
    if progress is not None:
        progress(len(ordered), len(ordered))
    pending = [p for p in touched.values() if p.pending_events]
    summary.events = sum(len(p.pending_events) for p in pending)
    summary.warnings.extend(reference_warnings)
    if pending and reference is not None:
        summary.events += len(reference.pending_events)
    if pending and not dry_run:
        try:
            recordings = portfolio.save(*pending, *([reference] if reference else []))
        except RecordConflictError:
            raise ImportConflict(
                "another writer changed these projects during the import; nothing was "
                "recorded: run the import again"
            ) from None
        summary.position = max(r.notification.id for r in recordings)
    summary.seconds = time.monotonic() - began
    return summary


def _check(editions: Sequence[Edition], today: date) -> list[Edition]:
    ordered = sorted(editions, key=lambda e: e.date)
    if len({e.series for e in ordered}) > 1:
        raise ValueError("one import handles one series at a time")
    seen: dict[date, Edition] = {}
    for edition in ordered:
        if edition.date > today:
            raise ImportRejected(
                edition.file, reason=f"edition {edition.ref} is dated {edition.date}, in the future"
            )
        if edition.date in seen:
            other = seen[edition.date]
            raise ImportRejected(
                edition.file,
                reason=f"gives edition {edition.ref} ({edition.date}) as {other.file} does: "
                "import one file per edition",
            )
        seen[edition.date] = edition
    return ordered


def _check_already_imported(edition: Edition, history: dict[UUID, list[Any]], newest: date) -> None:
    """An edition older than the newest: accepted only if it would record nothing."""
    states = {pid: project_as_of(events, edition.date) for pid, events in history.items()}
    known = {pid: p for pid, p in states.items() if p is not None}
    reports = {pid: last_report_as_of(history[pid], edition.date) for pid in known}
    plan = plan_edition(edition, known, {k: v for k, v in reports.items() if v})
    if plan.commands:
        examples = "; ".join(c.describe() for c in plan.commands[:3])
        raise BackdatedEdition(
            edition.file,
            reason=(
                f"edition {edition.ref} ({edition.date}) is older than the newest "
                f"{edition.series} edition already imported ({newest}) and differs from what "
                f"was recorded for it ({len(plan.commands)} changes, e.g. {examples}); "
                "backdated editions are refused (see docs/importing.md)"
            ),
        )


def _replay(events: list[Any]) -> Project:
    project = None
    for event in events:
        project = event.mutate(project)
    assert isinstance(project, Project)
    return project


def _apply(command: Command, edition: Edition, live: dict[UUID, Project], today: date) -> Project:
    prov: dict[str, Any] = {
        "effective_date": edition.date,
        "actor": ACTOR,
        "source": edition.source,
        "narrative": command.narrative,
        "today": today,
    }
    try:
        if command.method == "register":
            project = Project.register(id=command.project_id, **command.args, **prov)
            live[project.id] = project
            return project
        project = live[command.project_id]
        getattr(project, command.method)(**command.args, correction=False, **prov)
        return project
    except DomainError as e:
        raise ImportRejected(
            edition.file,
            command.row,
            None,
            command.name,
            f"cannot be recorded ({command.describe()}): {e.message}",
            record=edition.record,
        ) from None
