"""The FTAP files: laureates (`ftap_awards.csv`) and published figures (`ftap_programme.csv`).

Parsing only: every cell is checked here, so a malformed row is refused, naming its file,
row and column, before anything is recorded (importers/ftap_run.py records).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from importers.cells import CellError, money, one_line, parse_date, parse_decimal, text
from importers.errors import ImportRejected
from importers.readers import Cell, Table, is_blank, normalise_header, read_table

MILLION = Decimal(1_000_000)
AWARD_COLUMNS = (
    "call",
    "announced_on",
    "project",
    "ministry",
    "ministry_code",
    "amount_meur",
    "savings_meur",
    "source_url",
    "confidence",
    "notes",
)
FIGURE_COLUMNS = (
    "call",
    "announced_on",
    "laureates_count",
    "total_awarded_meur",
    "source_url",
    "kind",
    "confidence",
    "notes",
)
# The kind of a published figure, and the kind of money its total is.
FIGURE_KINDS: dict[str, str] = {
    "envelope": "envelope",
    "envelope_revision": "envelope",
    "annual_opening": "opened",
    "call_total": "announced",
    "selection": "announced",
    "year_total": "announced",
    "year_partial": "announced",
    "cumulative": "announced",
    "programme_total": "announced",
    "audit": "disbursed",
}
CALL_KINDS = ("call_total", "selection")
FUND_WIDE_KINDS = ("audit",)
PERIOD = re.compile(r"(?<!\d)((?:19|20)\d{2})-((?:19|20)\d{2})(?!\d)")
MONTH = re.compile(r"(?<!\d)((?:19|20)\d{2})-(0[1-9]|1[0-2])(?!\d)")
YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
# "raised to 780 M€ in LFI 2022": a revision the sources give only in a note.
RAISED = re.compile(
    r"raised to (\d+(?:[.,]\d+)?)\s*M€\s+(?:in|by)\s+(?:the\s+)?"
    r"(?:LFI|finance law)\s+((?:19|20)\d{2})",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Figure:
    """One row of the programme file: a published count and/or total under a label."""

    row: int
    label: str
    kind: str
    on: date | None
    count: int | None
    total: Decimal | None
    sources: str
    confidence: str | None
    notes: str | None

    @property
    def money_kind(self) -> str:
        return FIGURE_KINDS[self.kind]


@dataclass(frozen=True)
class Laureate:
    """One row of the awards file: a laureate of a call, with or without an amount."""

    row: int
    call: str
    on: date | None
    name: str
    ministry: str | None
    ministry_code: str | None
    amount: Decimal | None
    savings: Decimal | None
    sources: str
    confidence: str | None
    notes: str | None


@dataclass(frozen=True)
class Revision:
    """An envelope revision: from which date, to how much, why, on whose word."""

    on: date
    envelope: Decimal
    reason: str
    source: str
    row: int


@dataclass
class ProgrammeFile:
    """Everything the two files say about one programme (one envelope row)."""

    period: tuple[int, int]
    name: str
    currency: str
    envelope: Figure
    revisions: list[Revision] = field(default_factory=list)
    figures: list[tuple[Figure, str]] = field(default_factory=list)  # (figure, scope)
    laureates: list[Laureate] = field(default_factory=list)
    calls: dict[str, date] = field(default_factory=dict)  # call -> date it is dated from
    dated: dict[str, bool] = field(default_factory=dict)  # call -> its date was published

    @property
    def key(self) -> str:
        return f"{self.period[0]}-{self.period[1]}"


@dataclass
class FtapFiles:
    """The parsed pair of files, by programme, oldest first."""

    awards_file: str
    programme_file: str
    programmes: list[ProgrammeFile]
    warnings: list[str] = field(default_factory=list)


def end_of_label(label: str, today: date) -> date | None:
    """The last day of the month or year a label names (`2023-03`, `2020`), not after today."""
    month = MONTH.search(label)
    if month:
        year, number = int(month[1]), int(month[2])
        day = date(year, number, calendar.monthrange(year, number)[1])
    else:
        year_match = YEAR.search(label)
        if year_match is None:
            return None
        day = date(int(year_match[1]), 12, 31)
    return min(day, today)


def parse_ftap(
    awards: Path, programme: Path, *, fund: str = "FTAP", currency: str = "EUR", today: date
) -> FtapFiles:
    """Parse both files, refusing anything unclear; assign every row to its programme."""
    figure_table = _checked(read_table(programme), FIGURE_COLUMNS)
    award_table = _checked(read_table(awards), AWARD_COLUMNS)
    figures = [_figure(figure_table, n, c) for n, c in _rows(figure_table)]
    laureates = [_laureate(award_table, n, c) for n, c in _rows(award_table)]
    _no_duplicates(figure_table, [(f.row, f.label) for f in figures], "label")
    files = FtapFiles(award_table.file, figure_table.file, [])
    for figure in figures:
        if figure.kind == "envelope":
            files.programmes.append(_programme(figure_table, figure, fund, currency))
    if not files.programmes:
        raise ImportRejected(figure_table.file, column="kind", reason="has no envelope row")
    files.programmes.sort(key=lambda p: p.period)
    for figure in figures:
        if figure.kind == "envelope":
            continue
        target, scope = _owner(figure_table, files.programmes, figure)
        if figure.kind == "envelope_revision":
            if figure.on is None or figure.total is None:
                raise figure_table.reject(
                    figure.row, "announced_on", None, "an envelope revision needs a date and total"
                )
            target.revisions.append(
                Revision(
                    figure.on,
                    figure.total,
                    figure.notes or "revision",
                    figure.sources,
                    figure.row,
                )
            )
        else:
            target.figures.append((figure, scope))
    for laureate in laureates:
        target = _award_owner(award_table, files.programmes, laureate)
        target.laureates.append(laureate)
    for target in files.programmes:
        _settle_calls(target, award_table.file, files.warnings, today)
    return files


def _checked(table: Table, columns: tuple[str, ...]) -> Table:
    header = [normalise_header(h) for h in table.header]
    for column in columns:
        if column not in header:
            raise ImportRejected(table.file, 1, column, reason="is missing from the header")
    order = [header.index(c) for c in columns]
    rows = [(n, [cells[i] if i < len(cells) else None for i in order]) for n, cells in table.rows]
    return Table(table.file, list(columns), rows, encoding=table.encoding)


def _rows(table: Table) -> list[tuple[int, list[Cell]]]:
    rows = [(n, c) for n, c in table.rows if not all(is_blank(x) for x in c)]
    if not rows:
        raise ImportRejected(table.file, reason="lists nothing")
    return rows


def _cell(
    table: Table, number: int, cells: list[Cell], column: str, read: Callable[[Cell], Any]
) -> Any:
    value = cells[table.header.index(column)]
    if is_blank(value):
        return None
    try:
        return read(value)
    except CellError as e:
        raise table.reject(number, column, value, str(e)) from None


def _meur(cell: Cell) -> Decimal:
    amount = parse_decimal(cell, decimal_comma=False)
    if not amount.is_finite() or amount <= 0:
        raise CellError("must be a positive amount in M€")
    return money(amount, MILLION, "M€")


def _count(cell: Cell) -> int:
    raw = text(cell) or ""
    if not re.fullmatch(r"\d{1,6}", raw):
        raise CellError("is not a count of laureates (a whole number)")
    return int(raw)


def _required(table: Table, number: int, cells: list[Cell], column: str) -> str:
    value = _cell(table, number, cells, column, one_line)
    if value is None:
        raise table.reject(number, column, None, "must not be blank")
    return str(value)


def _figure(table: Table, number: int, cells: list[Cell]) -> Figure:
    kind = _required(table, number, cells, "kind")
    if kind not in FIGURE_KINDS:
        raise table.reject(
            number, "kind", kind, f"is not a kind of figure ({', '.join(FIGURE_KINDS)})"
        )
    return Figure(
        row=number,
        label=_required(table, number, cells, "call"),
        kind=kind,
        on=_cell(table, number, cells, "announced_on", parse_date),
        count=_cell(table, number, cells, "laureates_count", _count),
        total=_cell(table, number, cells, "total_awarded_meur", _meur),
        sources=_cell(table, number, cells, "source_url", one_line) or "",
        confidence=_cell(table, number, cells, "confidence", one_line),
        notes=_cell(table, number, cells, "notes", text),
    )


def _laureate(table: Table, number: int, cells: list[Cell]) -> Laureate:
    return Laureate(
        row=number,
        call=_required(table, number, cells, "call"),
        on=_cell(table, number, cells, "announced_on", parse_date),
        name=_required(table, number, cells, "project"),
        ministry=_cell(table, number, cells, "ministry", one_line),
        ministry_code=_cell(table, number, cells, "ministry_code", one_line),
        amount=_cell(table, number, cells, "amount_meur", _meur),
        savings=_cell(table, number, cells, "savings_meur", _meur),
        sources=_cell(table, number, cells, "source_url", one_line) or "",
        confidence=_cell(table, number, cells, "confidence", one_line),
        notes=_cell(table, number, cells, "notes", text),
    )


def _no_duplicates(table: Table, keys: list[tuple[int, str]], column: str) -> None:
    seen: dict[str, int] = {}
    for number, key in keys:
        if key in seen:
            raise table.reject(number, column, key, f"is listed twice (also row {seen[key]})")
        seen[key] = number


def _programme(table: Table, figure: Figure, fund: str, currency: str) -> ProgrammeFile:
    period = PERIOD.search(figure.label)
    if period is None:
        raise table.reject(
            figure.row, "call", figure.label, "must name the envelope's years (envelope-2018-2022)"
        )
    if figure.on is None or figure.total is None:
        raise table.reject(
            figure.row,
            "announced_on" if figure.on is None else "total_awarded_meur",
            None,
            "an envelope needs its date and its total",
        )
    start, end = int(period[1]), int(period[2])
    found = ProgrammeFile((start, end), f"{fund} {start}-{end}", currency, figure)
    for match in RAISED.finditer(figure.notes or ""):
        amount = money(Decimal(match[1].replace(",", ".")), MILLION, "M€")
        law = int(match[2])
        found.revisions.append(
            Revision(
                date(law, 1, 1),
                amount,
                f"raised to {match[1]} M€ by the finance law for {law} (LFI {law}), "
                f"as the notes of {table.file} row {figure.row} report: {match[0]!r}",
                figure.sources,
                figure.row,
            )
        )
    return found


def _owner(
    table: Table, programmes: list[ProgrammeFile], figure: Figure
) -> tuple[ProgrammeFile, str]:
    period = PERIOD.search(figure.label)
    if period is not None:
        for programme in programmes:
            if programme.period == (int(period[1]), int(period[2])):
                return programme, "programme"
    year = YEAR.search(figure.label)
    if figure.kind in FUND_WIDE_KINDS or year is None:
        return programmes[0], "fund"
    for programme in programmes:
        if programme.period[0] <= int(year[1]) <= programme.period[1]:
            return programme, "programme"
    raise table.reject(figure.row, "call", figure.label, "falls in no envelope's years")


def _award_owner(
    table: Table, programmes: list[ProgrammeFile], laureate: Laureate
) -> ProgrammeFile:
    year = YEAR.search(laureate.call)
    if year is None:
        raise table.reject(laureate.row, "call", laureate.call, "names no year")
    for programme in programmes:
        if programme.period[0] <= int(year[1]) <= programme.period[1]:
            return programme
    raise table.reject(laureate.row, "call", laureate.call, "falls in no envelope's years")


def _settle_calls(
    programme: ProgrammeFile, awards_file: str, warnings: list[str], today: date
) -> None:
    """The calls: published call figures and the laureates' calls, each with its date."""
    published = {f.label: f for f, _ in programme.figures if f.kind in CALL_KINDS}
    labels = {f.label: f for f, _ in programme.figures}
    settled: list[Laureate] = []
    for laureate in programme.laureates:
        call = laureate.call
        if call not in labels and laureate.on is not None:
            same_day = [
                f for f in published.values() if f.on == laureate.on and f.label[:4] == call[:4]
            ]
            if len(same_day) == 1:
                call = same_day[0].label
                warnings.append(
                    f"{awards_file}, row {laureate.row}: call {laureate.call!r} announced on "
                    f"{laureate.on} is filed under {call!r}, published the same day"
                )
        settled.append(_with_call(laureate, call))
    programme.laureates = settled
    calls = set(published) | {laureate.call for laureate in settled}
    for call in sorted(calls):
        figure = labels.get(call)
        days = [laureate.on for laureate in settled if laureate.call == call and laureate.on]
        if figure is not None and figure.on is not None:
            days.append(figure.on)
        if days:
            programme.calls[call], programme.dated[call] = min(days), True
        else:
            inferred = end_of_label(call, today)
            assert inferred is not None  # every call label names a year (checked above)
            programme.calls[call], programme.dated[call] = inferred, False


def _with_call(laureate: Laureate, call: str) -> Laureate:
    values = dict(laureate.__dict__)
    values["call"] = call
    return Laureate(**values)


def laureate_day(programme: ProgrammeFile, laureate: Laureate) -> tuple[date, bool]:
    """The laureate's effective date: its own, else its call's; and whether it was published."""
    if laureate.on is not None:
        return laureate.on, True
    return programme.calls[laureate.call], programme.dated[laureate.call]


def figure_day(figure: Figure, today: date) -> tuple[date, bool]:
    """A figure's effective date: published, else the end of what its label names, else today."""
    if figure.on is not None:
        return figure.on, True
    return end_of_label(figure.label, today) or today, False


def money_text(amount: Decimal | None) -> str:
    """An amount in M€ for messages."""
    return "unknown" if amount is None else f"{amount / MILLION:.2f} M€"


def source_of(file: str, row: int, sources: str) -> str:
    """The events' source: the file and row, then the sources the row names."""
    return f"ftap:{file} row {row}" + (f" ; {sources}" if sources else "")
