"""Execute the plans of a whole import in memory, then save every project in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError

from domain.application import Portfolio
from domain.edition import Edition as EditionRecord
from domain.edition import check_headline, edition_id
from domain.errors import DomainError
from domain.project import Project
from domain.values import Provenance
from importers.changes import LeavePortfolio, Register, RejoinPortfolio, ReportStatus
from importers.errors import BackdatedEdition, ImportConflict, ImportRejected
from importers.matching import normalise_name, project_id
from importers.model import Edition, ProjectRow
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
    records: dict[UUID, EditionRecord] = {}
    for done, edition in enumerate(ordered, start=1):
        if progress is not None:
            progress(done - 1, len(ordered))
        summary.warnings.extend(edition.warnings)
        recorded = _recorded(portfolio, edition)
        if recorded is not None and recorded.file_sha256 == edition.file_sha256:
            _publish_headline(recorded, edition, records)
            summary.skipped.append(edition.source)
            continue
        edition = _match_by_name(edition, live, summary.warnings)
        if newest is not None and edition.date < newest:
            _check_already_imported(edition, history, newest)
            _check_same_figures(edition, recorded, [], summary.warnings)
            summary.skipped.append(edition.source)
            _record_edition(portfolio, edition, recorded, records)
            continue
        plan = plan_edition(edition, live, {k: v for k, v in reported.items() if v})
        _check_same_figures(edition, recorded, plan.commands, summary.warnings)
        summary.warnings.extend(plan.warnings)
        for command in plan.commands:
            project = _apply(command, edition, live, portfolio.today())
            touched[project.id] = project
            if isinstance(command.change, ReportStatus):
                reported[project.id] = edition.date
        (summary.editions if plan.commands else summary.skipped).append(edition.source)
        summary.registered += plan.count(Register)
        summary.left += plan.count(LeavePortfolio)
        summary.rejoined += plan.count(RejoinPortfolio)
        summary.changed += plan.changed
        newest = edition.date
        _record_edition(portfolio, edition, recorded, records)
    if progress is not None:
        progress(len(ordered), len(ordered))
    pending: list[Aggregate] = [p for p in touched.values() if p.pending_events]
    pending += [r for r in records.values() if r.pending_events]  # last: the import's position
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


def _recorded(portfolio: Portfolio, edition: Edition) -> EditionRecord | None:
    """The edition as a previous import recorded it (None: never imported with its file)."""
    try:
        record: Any = portfolio.repository.get(edition_id(edition.series, edition.ref))
    except AggregateNotFoundError:
        return None
    assert isinstance(record, EditionRecord)
    return record


def _record_edition(
    portfolio: Portfolio,
    edition: Edition,
    recorded: EditionRecord | None,
    records: dict[UUID, EditionRecord],
) -> None:
    """Record the edition itself (file, hash, unit, headline) in the import's save."""
    if recorded is not None:
        _publish_headline(recorded, edition, records)
        return
    if not edition.file_sha256:
        return  # an edition built in code, not read from a file: there is no file to name
    try:
        record = EditionRecord.record_import(
            series=edition.series,
            ref=edition.ref,
            file=edition.file,
            file_sha256=edition.file_sha256,
            currency=edition.currency,
            unit=edition.unit,
            price_base=edition.price_base,
            projects=len(edition.projects),
            headline=edition.headline,
            effective_date=edition.date,
            actor=ACTOR,
            source=edition.source,
            today=portfolio.today(),
        )
    except DomainError as e:
        raise ImportRejected(edition.file, reason=f"cannot be recorded: {e.message}") from None
    records[record.id] = record


def _publish_headline(
    recorded: EditionRecord, edition: Edition, records: dict[UUID, EditionRecord]
) -> None:
    """Headline figures given now for an edition already imported: recorded if they differ."""
    if not edition.headline or check_headline(edition.headline) == recorded.headline:
        return
    recorded.publish_headline(edition.headline, file=edition.file, actor=ACTOR)
    records[recorded.id] = recorded


def _check_same_figures(
    edition: Edition,
    recorded: EditionRecord | None,
    commands: Sequence[Command],
    warnings: list[str],
) -> None:
    """Another file for an edition already imported: accepted only if it changes nothing."""
    if recorded is None:
        return
    if not commands:
        warnings.append(
            f"{edition.file}: gives edition {edition.source} as {recorded.file} (already "
            "imported) does: nothing recorded"
        )
        return
    examples = "; ".join(c.describe() for c in commands[:3])
    raise ImportRejected(
        edition.file,
        reason=(
            f"gives edition {edition.source} ({edition.date}), already imported from "
            f"{recorded.file} (sha256 {recorded.file_sha256[:12]}...), with other figures "
            f"({len(commands)} changes, e.g. {examples}): an imported edition is not "
            "replaced by another file (see docs/importing.md)"
        ),
    )


def _match_by_name(
    edition: Edition, projects: Mapping[UUID, Project], warnings: list[str]
) -> Edition:
    """Rows published without an id, matched to the series' project of the same name."""
    if not any(row.by_name for row in edition.projects.values()):
        return edition
    with_id = {
        row.project_id or project_id(edition.series, row.key)
        for row in edition.projects.values()
        if not row.by_name
    }
    named: dict[str, list[UUID]] = {}
    for pid, project in projects.items():
        named.setdefault(normalise_name(project.name), []).append(pid)
    rows: dict[str, ProjectRow] = {}
    for key, row in edition.projects.items():
        if not row.by_name:
            rows[key] = row
            continue
        where = f"{edition.file}, {edition.record} {row.row}"
        found = [pid for pid in named.get(normalise_name(row.name), []) if pid not in with_id]
        if len(found) > 1:
            raise ImportRejected(
                edition.file,
                row.row,
                row.id_column,
                None,
                f"is empty and {len(found)} projects are named {row.name!r}: give the id",
                record=edition.record,
            )
        if found:
            warnings.append(
                f"{where}: {row.name!r} has no id (column {row.id_column!r}): matched by its "
                "name to the project of that name"
            )
            rows[key] = replace(row, project_id=found[0])
        else:
            warnings.append(
                f"{where}: {row.name!r} has no id (column {row.id_column!r}) and no project "
                "has its name: registered under its name"
            )
            rows[key] = row
    return replace(edition, projects=rows)


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
    provenance = Provenance(edition.date, ACTOR, edition.source, command.narrative)
    try:
        if isinstance(command.change, Register):
            project = command.change.register(command.project_id, provenance, today)
            live[project.id] = project
            return project
        project = live[command.project_id]
        command.change.apply(project, provenance, today)
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
