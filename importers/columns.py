"""Header synonym tables: map a file's headers (and the units they name) onto fields."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from importers.errors import ImportRejected
from importers.readers import Table, is_blank, normalise_header

_UNIT_SUFFIX = re.compile(r"^(?:\((?P<a>[^()]+)\)|\[(?P<b>[^\[\]]+)\]|en (?P<c>.+)|- (?P<d>.+))$")


@dataclass(frozen=True)
class ColumnSpec:
    """A field and the headers that name it; `units` maps unit spellings to multipliers."""

    field: str
    headers: tuple[str, ...] = ()
    required: bool = False
    units: dict[str, Decimal] | None = None
    default_unit: str | None = None
    pattern: str | None = None  # a regex on the normalised header; group "unit" if any
    label: str | None = None  # how messages name the column when `headers` is empty


@dataclass(frozen=True)
class Layout:
    """A file layout: its name and its columns."""

    name: str
    columns: tuple[ColumnSpec, ...]

    def spelling(self, field_name: str) -> str:
        """How a field's column is usually headed, for messages."""
        for spec in self.columns:
            if spec.field == field_name:
                return spec.label or (spec.headers[0] if spec.headers else field_name)
        return field_name


@dataclass(frozen=True)
class Column:
    """A column of a file: its position, header, field and unit multiplier."""

    index: int
    header: str
    field: str
    multiplier: Decimal | None = None


@dataclass
class Mapping:
    """How a table's headers map onto a layout."""

    layout: Layout
    columns: dict[str, Column] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    errors: list[ImportRejected] = field(default_factory=list)


def _unit_of(rest: str) -> str | None:
    match = _UNIT_SUFFIX.match(rest)
    if not match:
        return None
    unit = next(g for g in match.groups() if g is not None).strip()
    return unit[3:].strip() if unit.startswith("en ") else unit


def _match(spec: ColumnSpec, header: str) -> tuple[bool, str | None]:
    """(matched, unit text) for one spec and one normalised header."""
    for spelling in spec.headers:
        base = normalise_header(spelling)
        if header == base:
            return True, spec.default_unit
        if spec.units is not None and header.startswith(base + " "):
            unit = _unit_of(header[len(base) :].strip())
            if unit is not None:
                return True, unit
    if spec.pattern is not None:
        match = re.fullmatch(spec.pattern, header)
        if match:
            groups = match.groupdict()
            return True, (groups.get("unit") or spec.default_unit)
    return False, None


def map_columns(table: Table, layout: Layout) -> Mapping:
    """Map every header of the table onto the layout's fields (errors are collected)."""
    result = Mapping(layout)
    for index, raw in enumerate(table.header):
        header = normalise_header(raw)
        if not header:
            continue
        spec, unit = _find(layout, header)
        if spec is None:
            result.ignored.append(raw.strip())
            continue
        if spec.field in result.columns:
            other = result.columns[spec.field].header
            result.errors.append(
                table.reject(None, raw.strip(), None, f"means the same as column {other!r}")
            )
            continue
        multiplier = None
        if spec.units is not None:
            known = {normalise_header(k): v for k, v in spec.units.items()}
            if unit is None or normalise_header(unit) not in known:
                accepted = ", ".join(spec.units)
                reason = (
                    f"gives no unit (accepted: {accepted})"
                    if unit is None
                    else (f"is a unit that is not understood (accepted: {accepted})")
                )
                result.errors.append(table.reject(None, raw.strip(), unit, reason))
                continue
            multiplier = known[normalise_header(unit)]
        result.columns[spec.field] = Column(index, raw.strip(), spec.field, multiplier)
    result.missing = [
        layout.spelling(s.field)
        for s in layout.columns
        if s.required and s.field not in result.columns
    ]
    return result


def _find(layout: Layout, header: str) -> tuple[ColumnSpec | None, str | None]:
    """The spec naming this header: exact spellings first, then spellings with a unit."""
    for spec in layout.columns:
        if any(normalise_header(h) == header for h in spec.headers):
            return spec, spec.default_unit
    for spec in layout.columns:
        matched, unit = _match(spec, header)
        if matched:
            return spec, unit
    return None, None


def choose_layout(table: Table, layouts: tuple[Layout, ...]) -> Mapping:
    """The layout whose required columns are all present; refuse ambiguity or no match."""
    mappings = [map_columns(table, layout) for layout in layouts]
    complete = [m for m in mappings if not m.missing]
    closest = max(mappings, key=lambda m: len(m.columns))
    if not complete and closest.errors:
        raise closest.errors[0]  # e.g. a unit not understood: more precise than "missing"
    if not complete:
        detail = "; ".join(
            f"the {m.layout.name} lacks " + ", ".join(repr(c) for c in m.missing) for m in mappings
        )
        raise ImportRejected(table.file, reason=f"has an unknown layout: {detail}")
    best = max(complete, key=lambda m: len(m.columns))
    if best.errors:
        raise best.errors[0]
    check_unnamed_columns(table, best)
    return best


def check_unnamed_columns(table: Table, mapping: Mapping) -> None:
    """Refuse data under a blank header (trailing empty columns are fine)."""
    unnamed = {i for i, h in enumerate(table.header) if not h.strip()}
    width = len(table.header)
    for number, cells in table.rows:
        for index, cell in enumerate(cells):
            if (index in unnamed or index >= width) and not is_blank(cell):
                raise table.reject(
                    number, f"#{index + 1}", cell, "is under a column with no header"
                )
