"""Record parsed FTAP files: programmes, envelope revisions, calls, figures, laureates, awards.

All or nothing: every aggregate is changed in memory, then saved in one transaction. What
is already recorded is not recorded again, so a second import of the same files records
nothing. Laureates that are panorama projects get their award on the project too; the
others are laureates of the programme only, never projects of the portfolio.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.persistence import RecordConflictError

from domain.application import Portfolio
from domain.errors import DomainError, ProgrammeNotFound
from domain.programme import FundingProgramme
from domain.project import Project
from domain.values import Provenance
from importers.errors import ImportConflict, ImportRejected
from importers.ftap import (
    FtapFiles,
    Laureate,
    ProgrammeFile,
    figure_day,
    laureate_day,
    source_of,
)
from importers.matching import NAMESPACE, Aliases, normalise_name
from importers.run import load_history

ACTOR = "import"
# Names the FTAP sources give to panorama projects (compared by their normalised keys).
BUILTIN_ALIASES = Aliases(
    {"FranceConnect Plateforme - Phase 2": "FRANCE CONNECT PHASE II"}, file="FTAP aliases"
)
_PARENTHESES = re.compile(r"\s*\([^)]*\)")


@dataclass
class FtapSummary:
    """What an FTAP import did (or, for a dry run, would do)."""

    programmes: list[str] = field(default_factory=list)
    created: int = 0
    revisions: int = 0
    calls: int = 0
    figures: int = 0
    laureates: int = 0
    matched: list[str] = field(default_factory=list)
    awards: int = 0
    without_amount: int = 0
    events: int = 0
    seconds: float = 0.0
    position: int | None = None
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A human summary, one line per fact."""
        recorded = (
            f"events that would be recorded: {self.events} (dry run: nothing recorded)"
            if self.dry_run
            else f"events recorded: {self.events}"
        )
        lines = [
            f"programmes: {', '.join(self.programmes)} ({self.created} created)",
            f"envelope revisions: {self.revisions}, calls opened: {self.calls}, "
            f"published figures: {self.figures}",
            f"laureates recorded: {self.laureates} (panorama projects: "
            f"{', '.join(self.matched) or 'none'}), awards: {self.awards}, "
            f"laureates without a known amount: {self.without_amount}",
            f"{recorded} in {self.seconds:.2f} s",
        ]
        if self.position is not None:
            lines.append(f"last notification position: {self.position}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return lines


def programme_id(name: str) -> UUID:
    """The deterministic id of an imported programme."""
    return uuid.uuid5(NAMESPACE, f"ftap:programme:{normalise_name(name)}")


def laureate_id(programme: UUID, call: str, name: str) -> UUID:
    """The deterministic id of a laureate of a call."""
    return uuid.uuid5(NAMESPACE, f"ftap:laureate:{programme}:{call}:{normalise_name(name)}")


class Matcher:
    """Finds the panorama project a laureate is, by normalised names and aliases."""

    def __init__(self, portfolio: Portfolio, aliases: Aliases) -> None:
        self.aliases = aliases
        self.index: dict[str, UUID] = {}
        for pid, events in load_history(portfolio, "panorama").items():
            names = [events[0].name]
            names += [
                e.changes["name"]
                for e in events[1:]
                if isinstance(e, Project.DetailsRevised) and "name" in e.changes
            ]
            for name in names:
                self.index.setdefault(self.key(name), pid)

    def key(self, name: str) -> str:
        return BUILTIN_ALIASES.key_of_key(self.aliases.key(name))

    def project(self, name: str) -> UUID | None:
        """The panorama project a laureate's name (or its name before parentheses) is."""
        for variant in (name, _PARENTHESES.sub("", name).strip()):
            found = self.index.get(self.key(variant)) if variant else None
            if found is not None:
                return found
        return None


def import_ftap(
    portfolio: Portfolio, files: FtapFiles, *, aliases: Aliases | None = None, dry_run: bool = False
) -> FtapSummary:
    """Record what the files say that is not recorded yet, in one transaction."""
    began = time.monotonic()
    summary = FtapSummary(dry_run=dry_run, warnings=list(files.warnings))
    matcher = Matcher(portfolio, aliases or Aliases())
    projects: dict[UUID, Project] = {}
    touched: list[Any] = []
    for parsed in files.programmes:
        programme = _Recorder(portfolio, files, parsed, summary, projects).run(matcher)
        touched.append(programme)
    touched.extend(projects.values())
    pending = [a for a in touched if a.pending_events]
    summary.events = sum(len(a.pending_events) for a in pending)
    if pending and not dry_run:
        try:
            recordings = portfolio.save(*pending)
        except RecordConflictError:
            raise ImportConflict(
                "another writer changed these programmes or projects during the import; "
                "nothing was recorded: run the import again"
            ) from None
        summary.position = max(r.notification.id for r in recordings)
    summary.seconds = time.monotonic() - began
    return summary


class _Recorder:
    """Brings one programme up to what the files say."""

    def __init__(
        self,
        portfolio: Portfolio,
        files: FtapFiles,
        parsed: ProgrammeFile,
        summary: FtapSummary,
        projects: dict[UUID, Project],
    ) -> None:
        self.portfolio, self.files, self.parsed = portfolio, files, parsed
        self.summary, self.projects = summary, projects
        self.today = portfolio.today()

    def prov(self, day: date, source: str, narrative: str | None) -> Provenance:
        return Provenance(effective_date=day, actor=ACTOR, source=source, narrative=narrative)

    @contextmanager
    def refusing(self, file: str, row: int, column: str, value: Any) -> Iterator[None]:
        """A domain refusal inside the block refuses the import, naming file, row and column."""
        try:
            yield
        except DomainError as e:
            reason = f"cannot be recorded: {e.message}"
            raise ImportRejected(file, row, column, value, reason) from None

    def run(self, matcher: Matcher) -> FundingProgramme:
        parsed, summary = self.parsed, self.summary
        summary.programmes.append(parsed.name)
        programme = self.programme()
        for revision in sorted(parsed.revisions, key=lambda r: r.on):
            if [revision.on, revision.envelope] in programme.envelopes:
                continue
            prov = self.prov(
                revision.on,
                source_of(self.files.programme_file, revision.row, revision.source),
                revision.reason,
            )
            with self.refusing(
                self.files.programme_file, revision.row, "notes", str(revision.envelope)
            ):
                programme.revise_envelope(
                    revision.envelope, revision.reason, provenance=prov, today=self.today
                )
            summary.revisions += 1
        for call, day in sorted(parsed.calls.items(), key=lambda c: (c[1], c[0])):
            if call not in programme.calls:
                narrative = None if parsed.dated[call] else "date not published: end of the period"
                programme.open_call(
                    call,
                    provenance=self.prov(day, f"ftap:{self.files.awards_file}", narrative),
                    today=self.today,
                )
                summary.calls += 1
        self.figures(programme)
        self.laureates(programme, matcher)
        return programme

    def programme(self) -> FundingProgramme:
        parsed = self.parsed
        pid = programme_id(parsed.name)
        try:
            programme = self.portfolio.get_programme(pid)
        except ProgrammeNotFound:
            envelope = parsed.envelope
            assert envelope.on is not None and envelope.total is not None
            source = source_of(self.files.programme_file, envelope.row, envelope.sources)
            programme = FundingProgramme.create(
                name=parsed.name,
                envelope=envelope.total,
                currency=parsed.currency,
                id=pid,
                provenance=Provenance(
                    effective_date=envelope.on,
                    actor=ACTOR,
                    source=source,
                    narrative=envelope.notes,
                ),
                today=self.today,
            )
            self.summary.created += 1
        return programme

    def figures(self, programme: FundingProgramme) -> None:
        file = self.files.programme_file
        for figure, scope in self.parsed.figures:
            day, dated = figure_day(figure, self.today)
            known = programme.figures.get(figure.label)
            if known == {"total": figure.total, "count": figure.count, "on": day}:
                continue
            prov = self.prov(day, source_of(file, figure.row, figure.sources), figure.notes)
            with self.refusing(file, figure.row, "total_awarded_meur", figure.total):
                programme.publish_figure(
                    label=figure.label,
                    kind=figure.kind,
                    money_kind=figure.money_kind,
                    laureates_count=figure.count,
                    total=figure.total,
                    dated=dated,
                    confidence=figure.confidence,
                    scope=scope,
                    provenance=prov,
                    today=self.today,
                )
            self.summary.figures += 1

    def laureates(self, programme: FundingProgramme, matcher: Matcher) -> None:
        file = self.files.awards_file
        seen: dict[UUID, int] = {}
        awarded = {a["project_id"]: a["amount"] for a in programme.awards}
        rows = sorted(self.parsed.laureates, key=lambda r: laureate_day(self.parsed, r)[0])
        for row in rows:
            lid = laureate_id(programme.id, row.call, row.name)
            if lid in seen:
                raise ImportRejected(
                    file,
                    row.row,
                    "project",
                    row.name,
                    f"is listed twice in call {row.call!r} (also row {seen[lid]})",
                )
            seen[lid] = row.row
            day, dated = laureate_day(self.parsed, row)
            prov = self.prov(day, source_of(file, row.row, row.sources), row.notes)
            known = programme.laureates.get(lid)
            if known is None:
                project = matcher.project(row.name)
                with self.refusing(file, row.row, "project", row.name):
                    programme.select_laureate(
                        laureate_id=lid,
                        name=row.name,
                        call=row.call,
                        project_id=project,
                        ministry=row.ministry,
                        ministry_code=row.ministry_code,
                        savings=row.savings,
                        confidence=row.confidence,
                        dated=dated,
                        provenance=prov,
                        today=self.today,
                    )
                self.summary.laureates += 1
                if project is not None:
                    self.summary.matched.append(row.name)
            else:
                project = known["project_id"]
            if row.amount is None:
                self.summary.without_amount += known is None
                continue
            self.award(programme, row, project or lid, project, awarded, prov)

    def award(
        self,
        programme: FundingProgramme,
        row: Laureate,
        recipient: UUID,
        project_id: UUID | None,
        awarded: dict[UUID, Any],
        prov: Provenance,
    ) -> None:
        file = self.files.awards_file
        assert row.amount is not None
        if recipient in awarded:
            if awarded[recipient] != row.amount:
                raise ImportRejected(
                    file,
                    row.row,
                    "amount_meur",
                    str(row.amount),
                    f"differs from the award already recorded ({awarded[recipient]}): "
                    "corrections of awards are not imported",
                )
            return

        with self.refusing(file, row.row, "amount_meur", str(row.amount)):
            programme.award(recipient, row.amount, row.call, provenance=prov, today=self.today)
            if project_id is not None:
                project = self.projects.get(project_id) or self.portfolio.get_project(project_id)
                self.projects[project_id] = project
                project.receive_funding(
                    programme.id, row.amount, row.call, provenance=prov, today=self.today
                )
        awarded[recipient] = row.amount
        self.summary.awards += 1
