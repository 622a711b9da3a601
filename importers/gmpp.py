"""The UK Government Major Projects Portfolio: six annual layouts, one of them transposed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from importers.cells import CellError, Rounding, one_line, parse_date, parse_decimal, text
from importers.columns import Column, ColumnSpec, Layout, choose_layout, map_columns
from importers.errors import ImportRejected
from importers.matching import normalise_name
from importers.model import Edition, ProjectRow
from importers.readers import (
    Cell,
    Table,
    file_sha256,
    is_blank,
    normalise_header,
    read_table,
    transpose,
)
from importers.units import unit_name

SERIES = "gmpp"
CURRENCY = "GBP"
# How publishers have renamed the id column (read with a warning; refused when strict).
ID_SYNONYMS = (
    "Project ID",
    "Project ID Number",
    "GMPP Project ID",
    "GMPP Number",
    "GMPP Reference",
    "Project Identifier",
    "Project Reference",
    "Project Ref",
    "Identifier",
    "ID",
)
# GMPP publishes no phase; projects are registered in this one (a documented choice).
GMPP_PHASE = "Conception / Réalisation"

MONEY_UNITS = {"£m": Decimal(1_000_000), "£bn": Decimal(1_000_000_000), "£k": Decimal(1_000)}
MONEY_UNITS |= {"£": Decimal(1)}

LAYOUT = Layout(
    "GMPP annual layout",
    (
        ColumnSpec("gmpp_id", ("GMPP ID Number", "GMPP ID"), required=True, synonyms=ID_SYNONYMS),
        ColumnSpec("name", ("Project Name",), required=True),
        ColumnSpec("department", ("Department",), required=True),
        ColumnSpec("category", ("Annual Report Category",)),
        ColumnSpec("description", ("Description / Aims", "Project Description", "Description")),
        ColumnSpec(
            "ipa_dca",
            pattern=r"ipa delivery confidence assessment\b.*",
            required=True,
            label="IPA Delivery Confidence Assessment",
        ),
        ColumnSpec("sro_dca", pattern=r"sro delivery confidence assessment\b.*"),
        ColumnSpec("commentary", pattern=r"departmental commentary on .*"),
        ColumnSpec(
            "start", pattern=r"(project - )?start date\b.*", required=True, label="Start Date"
        ),
        ColumnSpec("end", pattern=r"(project - )?end date\b.*", required=True, label="End Date"),
        ColumnSpec(
            "schedule_narrative", pattern=r"departmental narrative on schedule.*|schedule narrative"
        ),
        ColumnSpec("fy_baseline", pattern=r"financial year baseline .*"),
        ColumnSpec("fy_forecast", pattern=r"financial year forecast .*"),
        ColumnSpec("fy_variance", pattern=r"financial year variance .*"),
        ColumnSpec("fy_narrative", pattern=r"departmental narrative on +budget/forecast .*"),
        ColumnSpec("fy_narrative_2", pattern=r"in year variance narrative"),
        ColumnSpec(
            "wlc",
            pattern=r"(total baseline )?whole life costs? \((?P<unit>[^)]*)\).*",
            required=True,
            units=MONEY_UNITS,
            currency=CURRENCY,
            label="TOTAL Baseline Whole Life Costs (£m)",
        ),
        ColumnSpec(
            "wlc_narrative",
            pattern=r"departmental narrative on budgeted whole life costs|costs narrative",
        ),
        ColumnSpec("benefits", pattern=r"(total baseline )?benefits \(.*\)"),
        ColumnSpec("benefits_narrative", pattern=r".*narrative on .*benefits|benefits narrative"),
        ColumnSpec("evaluation", pattern=r"does the project have an evaluation plan.*"),
        ColumnSpec("sro_name", pattern=r"senior responsible owner.*name"),
    ),
)

RATINGS: dict[str, str] = {
    "green": "Green",
    "ambergreen": "Amber/Green",
    "amber": "Amber",
    "amberred": "Amber/Red",
    "red": "Red",
}
# Sentences published instead of a figure or a rating: the value is "not published".
UNPUBLISHED = re.compile(
    r"\bexempt|\bsection \d|freedom of information|not (yet )?in a position|planning stage"
    r"|pre-soc|early planning|not applicable|not available|data not provided|cannot calculate"
    r"|armp adjustments"
)
EXEMPT = re.compile(r"\bexempt|\bsection \d|freedom of information")
BLANK_WORDS = frozenset({"na", "n/a", "-", "–", "nil", "none", "no", "tbc", "inf", "-inf"})
_RANGE = re.compile(r"\b(low|mid|high)\s*:", re.IGNORECASE)
_MID = re.compile(r"\bmid\s*:\s*([^,]+)", re.IGNORECASE)


def financial_year(path: Path, year: str | None) -> tuple[str, int]:
    """('2020-21', 2021) from --year, else from a file name such as gmpp_2020_21.csv."""
    source = year or path.stem
    match = re.search(r"(20\d\d)\s*[-_/]?\s*(\d\d)(?!\d)", source)
    if match and (int(match[1]) + 1) % 100 == int(match[2]):
        return f"{match[1]}-{match[2]}", int(match[1]) + 1
    if year is not None:
        raise ImportRejected(path.name, value=year, reason="is not a financial year like 2020-21")
    raise ImportRejected(path.name, reason="names no financial year: give --year 2020-21")


@dataclass(frozen=True)
class _Options:
    strict: bool
    rounding: Rounding


def parse_gmpp(
    path: Path, *, year: str | None = None, snapshot: date | None = None, strict: bool = False
) -> Edition:
    """Parse one GMPP annual file into an edition dated 31 March of the year's end.

    Unless `strict`, amounts finer than a penny are rounded half-even, a renamed id column
    or unit header is read, and a row without an id is matched by name, with warnings."""
    ref, end_year = financial_year(path, year)
    table = read_table(path)
    if _looks_transposed(table):
        table = transpose(table)
    mapping = choose_layout(table, (LAYOUT,), strict=strict)
    options = _Options(strict, Rounding(table.file, strict))
    reader = _Reader(table, mapping.columns, f"{SERIES}:{ref}", options)
    warnings = list(mapping.warnings)
    warnings += [f"{table.file}: field {h[:60]!r} is not imported" for h in mapping.ignored]
    projects: dict[str, ProjectRow] = {}
    for number, cells in table.rows:
        if all(is_blank(c) for c in cells):
            continue
        project = reader.project(number, cells, warnings)
        if project.key in projects:
            raise table.reject(
                number,
                mapping.columns["gmpp_id"].header,
                project.key,
                f"is already listed in {table.record} {projects[project.key].row}",
            )
        projects[project.key] = project
    if not projects:
        raise ImportRejected(table.file, reason="lists no project")
    rounded = options.rounding.warning(CURRENCY)
    unit = mapping.columns["wlc"].unit
    return Edition(
        SERIES,
        ref,
        snapshot or date(end_year, 3, 31),
        table.file,
        projects,
        currency=CURRENCY,
        default_phase=GMPP_PHASE,
        record=table.record,
        warnings=[*warnings, *([rounded] if rounded else [])],
        file_sha256=file_sha256(path),
        unit=unit_name(CURRENCY, unit.multiplier) if unit else None,
        price_base=unit.price_base if unit else None,
    )


def _looks_transposed(table: Table) -> bool:
    across = len(map_columns(table, LAYOUT).columns)
    first_column = [
        str(cells[0]) if cells and cells[0] is not None else "" for _, cells in table.rows
    ]
    probe = Table(table.file, [table.header[0] if table.header else "", *first_column], [])
    down = len(map_columns(probe, LAYOUT).columns)
    return down > across


class _Reader:
    def __init__(
        self, table: Table, columns: dict[str, Column], source: str, options: _Options
    ) -> None:
        self.table, self.columns, self.source = table, columns, source
        self.options = options

    def parse(
        self, number: int, cells: list[Cell], field: str, parser: Callable[[Cell], Any]
    ) -> Any:
        column = self.columns.get(field)
        if column is None:
            return None
        value = cells[column.index] if column.index < len(cells) else None
        try:
            return parser(value)
        except CellError as e:
            raise self.table.reject(number, column.header, value, str(e)) from None

    def project(self, number: int, cells: list[Cell], warnings: list[str]) -> ProjectRow:
        gmpp_id = self.parse(number, cells, "gmpp_id", one_line)
        name = self.parse(number, cells, "name", one_line)
        department = self.parse(number, cells, "department", one_line)
        required: tuple[tuple[str, Any], ...] = (("name", name), ("department", department))
        if self.options.strict or not name:
            required = (("gmpp_id", gmpp_id), *required)
        for field, value in required:
            if not value:
                raise self.table.reject(number, self.columns[field].header, value, "is empty")
        by_name = not gmpp_id
        if by_name:
            key = f"name:{normalise_name(str(name))}"
        else:
            key = re.sub(r"\s+", "", str(gmpp_id)).upper()
        start = self.parse(number, cells, "start", _optional(_date))
        end = self.parse(number, cells, "end", _optional(_date))
        if start is not None and end is not None and end < start:
            warnings.append(
                f"{self.table.file}, {self.table.record} {number}: {key} ends ({end}) before it "
                f"starts ({start}); its end date is not imported"
            )
            end = None
        cost, withheld = self.whole_life_cost(number, cells)
        ipa = self.parse(number, cells, "ipa_dca", _rating)
        sro = self.parse(number, cells, "sro_dca", _rating)
        assessor, rating = ("IPA", ipa) if ipa else ("SRO", sro)
        commentary = self.parse(number, cells, "commentary", _narrative)
        narratives: dict[str, str] = {}
        if rating:
            published = f": {commentary}" if commentary else "; no commentary was published"
            narratives["status"] = f"{assessor} delivery confidence {rating}{published}"
        for kind, field in (("schedule", "schedule_narrative"), ("cost", "wlc_narrative")):
            narrative = self.parse(number, cells, field, _narrative)
            if narrative:
                narratives[kind] = narrative
        details: dict[str, Any] = {"name": name, "ministry_code": department, "start_date": start}
        for field, target in (("description", "description"), ("category", "functional_zone")):
            if field in self.columns:
                details[target] = self.parse(number, cells, field, _narrative)
        return ProjectRow(
            key=key,
            row=number,
            name=str(name),
            details=details,
            cost=cost,
            planned_end=end,
            withheld=withheld,
            withheld_reason=self.parse(number, cells, "wlc", one_line) if withheld else None,
            rating=rating,
            narratives=narratives,
            by_name=by_name,
            id_column=self.columns["gmpp_id"].header,
        )

    def whole_life_cost(self, number: int, cells: list[Cell]) -> tuple[Decimal | None, bool]:
        column = self.columns["wlc"]
        value = cells[column.index] if column.index < len(cells) else None
        raw = one_line(value)
        if raw is not None and EXEMPT.search(normalise_header(raw)):
            return None, True
        amount = self.parse(number, cells, "wlc", _optional(_number))
        if amount is None:
            return None, False
        if amount < 0:
            raise self.table.reject(number, column.header, value, "is negative")
        if amount == 0:
            return None, False  # £0 is read as "no estimate"
        where = f"{self.table.record} {number}, column {column.header[:60]!r}"
        try:
            multiplier = column.multiplier or Decimal(1)
            return self.options.rounding.money(amount, multiplier, where), False
        except CellError as e:
            raise self.table.reject(number, column.header, value, str(e)) from None


def _unpublished(cell: Cell) -> bool:
    raw = one_line(cell)
    if raw is None:
        return True
    folded = normalise_header(raw)
    return folded in BLANK_WORDS or bool(UNPUBLISHED.search(folded))


def _optional(parser: Callable[[Cell], Any]) -> Callable[[Cell], Any]:
    def parse(cell: Cell) -> Any:
        return None if _unpublished(cell) else parser(cell)

    return parse


def _central(cell: Cell) -> Cell:
    """The Mid value of a `Low: x, Mid: y, High: z` range; other cells unchanged."""
    raw = text(cell)
    if raw is None or not _RANGE.search(raw):
        return cell
    mid = _MID.search(raw)
    if mid is None:
        raise CellError("is a range without a Mid value")
    return mid[1].strip()


def _date(cell: Cell) -> date:
    return parse_date(_central(cell))


def _number(cell: Cell) -> Decimal:
    return parse_decimal(_central(cell), decimal_comma=False)


def _rating(cell: Cell) -> str | None:
    raw = one_line(cell)
    if raw is None:
        return None
    rating = RATINGS.get(re.sub(r"[^a-z]", "", normalise_header(raw)))
    if rating is not None:
        return rating
    if _unpublished(cell) or len(raw.split()) >= 4:
        return None  # an exemption or an explanation instead of a rating
    raise CellError(f"is not a delivery confidence rating (expected {', '.join(RATINGS.values())})")


def _narrative(cell: Cell) -> str | None:
    value = text(cell)
    if value is None or normalise_header(value) in BLANK_WORDS:
        return None
    return value
