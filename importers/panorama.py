"""The French panorama: the official 15-column layout and the consolidated long layout."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from domain.values import PHASES
from importers.cells import (
    CellError,
    Rounding,
    one_line,
    parse_bool,
    parse_date,
    parse_decimal,
    text,
)
from importers.columns import Column, choose_layout
from importers.errors import ImportRejected
from importers.matching import Aliases, ministry_code, normalise_name
from importers.model import Edition, ProjectRow
from importers.panorama_layouts import (
    CONSOLIDATED,
    CURRENCY,
    KNOWN_PUBLICATION_DATES,
    NOT_COSTED,
    OFFICIAL,
    PHASE_KEYS,
    SERIES,
    WITHHELD_MARKERS,
)
from importers.readers import Cell, Table, file_sha256, is_blank, normalise_header, read_table
from importers.units import unit_name

URL = re.compile(r"https?://[^\s'\"<>]+")


def parse_panorama(
    path: Path,
    *,
    edition_date: date | None = None,
    aliases: Aliases | None = None,
    strict: bool = False,
) -> list[Edition]:
    """Parse a panorama file (either layout) into its editions, refusing what is unclear.

    Unless `strict`, amounts finer than a cent are rounded half-even, header synonyms and
    unit headers outside the known table are read, each with a warning."""
    table = read_table(path)
    mapping = choose_layout(table, (OFFICIAL, CONSOLIDATED), strict=strict)
    aliases = aliases or Aliases()
    reader = _Reader(table, mapping.columns, aliases, Rounding(table.file, strict))
    rows = [(n, c) for n, c in table.rows if not all(is_blank(x) for x in c)]
    if not rows:
        raise ImportRejected(table.file, reason="lists no project")
    if mapping.layout is OFFICIAL:
        groups = {"": rows}
    else:
        groups = {}
        for number, cells in rows:
            ref = reader.edition_ref(number, cells)
            groups.setdefault(ref, []).append((number, cells))
        if edition_date is not None and len(groups) > 1:
            raise ImportRejected(
                table.file, reason="holds several editions: --edition-date cannot apply"
            )
    editions = [
        reader.edition(ref, group, edition_date, mapping.ignored) for ref, group in groups.items()
    ]
    unit = mapping.columns["cost"].unit
    rounded = reader.rounding.warning(CURRENCY)
    once = [*mapping.warnings, *([rounded] if rounded else [])]  # one warning per file
    sha256 = file_sha256(path)
    return [
        replace(
            edition,
            warnings=[*once, *edition.warnings] if number == 0 else edition.warnings,
            file_sha256=sha256,
            unit=unit_name(CURRENCY, unit.multiplier) if unit else None,
            price_base=unit.price_base if unit else None,
        )
        for number, edition in enumerate(editions)
    ]


class _Reader:
    def __init__(
        self, table: Table, columns: dict[str, Column], aliases: Aliases, rounding: Rounding
    ) -> None:
        self.table, self.columns, self.aliases = table, columns, aliases
        self.rounding = rounding

    def cell(self, cells: list[Cell], field: str) -> Cell:
        column = self.columns.get(field)
        if column is None or column.index >= len(cells):
            return None
        return cells[column.index]

    def parse(
        self, number: int, cells: list[Cell], field: str, parser: Callable[[Cell], Any]
    ) -> Any:
        value = self.cell(cells, field)
        if isinstance(value, str) and value.strip().startswith("=") and len(value.strip()) > 1:
            raise self.table.reject(
                number, self.columns[field].header, value, "is an unevaluated formula"
            )
        try:
            return parser(value)
        except CellError as e:
            raise self.table.reject(number, self.columns[field].header, value, str(e)) from None

    def edition_ref(self, number: int, cells: list[Cell]) -> str:
        raw = self.parse(number, cells, "edition", text)
        if raw is None or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", raw):
            header = self.columns["edition"].header
            raise self.table.reject(number, header, raw, "is not an edition (expected yyyy-mm)")
        return str(raw)

    def edition(
        self, ref: str, rows: list[tuple[int, list[Cell]]], forced: date | None, ignored: list[str]
    ) -> Edition:
        published = self.publication_date(rows)
        if forced is not None and published is not None and forced != published:
            raise ImportRejected(
                self.table.file,
                column=self.columns["published"].header,
                value=published.isoformat(),
                reason=f"contradicts --edition-date {forced.isoformat()}",
            )
        when = forced or published
        if when is None and ref:
            when = KNOWN_PUBLICATION_DATES.get(ref, date.fromisoformat(ref + "-01"))
        if when is None:
            raise ImportRejected(
                self.table.file, reason="has no 'Date de publication': give --edition-date"
            )
        if not ref:
            known = [r for r, d in KNOWN_PUBLICATION_DATES.items() if d == when]
            ref = known[0] if known else when.strftime("%Y-%m")
        projects: dict[str, ProjectRow] = {}
        warnings = [f"{self.table.file}: column {h!r} is not imported" for h in ignored]
        for number, cells in rows:
            project = self.project(number, cells)
            if project.key in projects:
                raise self.table.reject(
                    number,
                    self.columns["name"].header,
                    project.name,
                    f"is the same project as row {projects[project.key].row} "
                    f"(normalised name {project.key!r})",
                )
            projects[project.key] = project
        return Edition(
            SERIES, ref, when, self.table.file, projects, currency=CURRENCY, warnings=warnings
        )

    def publication_date(self, rows: list[tuple[int, list[Cell]]]) -> date | None:
        if "published" not in self.columns:
            return None
        found: date | None = None
        for number, cells in rows:
            value = self.parse(number, cells, "published", _optional(parse_date))
            if value is not None and found is not None and value != found:
                header = self.columns["published"].header
                raise self.table.reject(
                    number, header, value.isoformat(), f"differs from {found.isoformat()}"
                )
            found = found or value
        return found

    def project(self, number: int, cells: list[Cell]) -> ProjectRow:
        name = self.parse(number, cells, "name", one_line)
        key = self.aliases.key(name) if name else ""
        if not name or not key:
            raise self.table.reject(number, self.columns["name"].header, name, "is not a name")
        details: dict[str, Any] = {"name": name}
        ministry_name = self.parse(number, cells, "ministry_name", one_line)
        if "ministry_code" in self.columns:
            code = self.parse(number, cells, "ministry_code", one_line)
            if not code:
                raise self.table.reject(
                    number, self.columns["ministry_code"].header, code, "is empty"
                )
            details["ministry_code"] = code
        elif not ministry_name:
            raise self.table.reject(number, self.columns["ministry_name"].header, None, "is empty")
        else:
            details["ministry_code"] = ministry_code(ministry_name)
        if "ministry_name" in self.columns:
            details["ministry_name"] = ministry_name
        details["interministerial"] = self.parse(number, cells, "interministerial", parse_bool)
        for field, parser in (("description", text), ("functional_zone", one_line)):
            if field in self.columns:
                details[field] = self.parse(number, cells, field, parser)
        if "programmes" in self.columns:
            details["programmes"] = self.parse(number, cells, "programmes", _lines)
        if "more_info" in self.columns or "pap" in self.columns:
            links = self.parse(number, cells, "more_info", _urls)
            details["links"] = list(dict.fromkeys(links + self.parse(number, cells, "pap", _urls)))
        phase_text = self.parse(number, cells, "phase", one_line)
        withheld = phase_text is not None and _is_withheld(phase_text)
        phase = None if withheld else self.parse(number, cells, "phase", _phase)
        start = self.start(number, cells)
        details["start_date"] = start
        cost = None if withheld else self.figure(number, cells, "cost")
        duration = None if withheld else self.figure(number, cells, "duration")
        planned_end = None
        if start is not None and duration is not None:
            planned_end = start + timedelta(days=int(duration.to_integral_value(ROUND_HALF_UP)))
        return ProjectRow(
            key=key,
            row=number,
            name=name,
            details=details,
            phase=phase,
            cost=cost,
            planned_end=planned_end,
            withheld=withheld,
            withheld_reason=phase_text if withheld else None,
        )

    def start(self, number: int, cells: list[Cell]) -> date | None:
        start: date | None = self.parse(number, cells, "start", _optional(parse_date))
        if start is None and "start_display" in self.columns:
            start = self.parse(number, cells, "start_display", _optional(parse_date))
        return start

    def figure(self, number: int, cells: list[Cell], field: str) -> Decimal | None:
        """A cost or duration in its column's unit, scaled; None when not given."""
        value = self.parse(number, cells, field, _optional_number)
        if value is None:
            return None
        if value < 0:
            raise self.table.reject(
                number, self.columns[field].header, self.cell(cells, field), "is negative"
            )
        if value == 0:
            return None  # a zero cost or duration is read as "not estimated"
        multiplier = self.columns[field].multiplier or Decimal(1)
        if field != "cost":
            return Decimal(value * multiplier)
        header = self.columns[field].header
        where = f"{self.table.record} {number}, column {header!r}"
        try:
            return self.rounding.money(value, multiplier, where)
        except CellError as e:
            raise self.table.reject(number, header, self.cell(cells, field), str(e)) from None


def _optional(parser: Callable[[Cell], Any]) -> Callable[[Cell], Any]:
    def parse(cell: Cell) -> Any:
        return None if is_blank(cell) else parser(cell)

    return parse


def _optional_number(cell: Cell) -> Decimal | None:
    if is_blank(cell):
        return None
    if isinstance(cell, str) and normalise_header(cell) in NOT_COSTED:
        return None
    return parse_decimal(cell, decimal_comma=True)


def _is_withheld(phase_text: str) -> bool:
    return any(marker in normalise_header(phase_text) for marker in WITHHELD_MARKERS)


def _phase(cell: Cell) -> str:
    raw = text(cell)
    if raw is None:
        raise CellError(f"is empty (expected one of {', '.join(PHASES)})")
    phase = PHASE_KEYS.get(normalise_name(raw))
    if phase is None:
        raise CellError(f"is not a phase (expected one of {', '.join(PHASES)})")
    return phase


def _lines(cell: Cell) -> list[str]:
    raw = text(cell) or ""
    return [line for line in (one_line(x) for x in raw.splitlines()) if line]


def _urls(cell: Cell) -> list[str]:
    return URL.findall(text(cell) or "")
