"""Header synonym tables: map a file's headers (and the units they name) onto fields."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from importers.errors import ImportRejected
from importers.readers import Table, is_blank, normalise_header
from importers.units import Unit, UnitNotUnderstood, parse_unit, price_base

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
    synonyms: tuple[str, ...] = ()  # other headers real files use; refused when strict
    currency: str | None = None  # the currency of a money column's amounts


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
    unit: Unit | None = None  # for a money column: its currency and price base


@dataclass
class Mapping:
    """How a table's headers map onto a layout."""

    layout: Layout
    columns: dict[str, Column] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    errors: list[ImportRejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


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


def map_columns(table: Table, layout: Layout, *, strict: bool = False) -> Mapping:
    """Map every header of the table onto the layout's fields (errors are collected).

    Unless `strict`, a header may also be one of a field's synonyms, and a unit outside the
    field's table is read by `parse_unit` (each with a warning)."""
    result = Mapping(layout)
    for index, raw in enumerate(table.header):
        header = normalise_header(raw)
        if not header:
            continue
        spec, unit, synonym = _find(layout, header, strict=strict)
        if spec is None:
            result.ignored.append(raw.strip())
            continue
        if spec.field in result.columns:
            other = result.columns[spec.field].header
            result.errors.append(
                table.reject(None, raw.strip(), None, f"means the same as column {other!r}")
            )
            continue
        if synonym:
            result.warnings.append(
                f"{table.file}: column {raw.strip()!r} is read as {layout.spelling(spec.field)!r}"
            )
        read = Column(index, raw.strip(), spec.field)
        if spec.units is not None:
            read = _with_unit(table, spec, read, unit, header, strict, result)
            if read.multiplier is None:
                continue
        result.columns[spec.field] = read
    result.missing = [
        layout.spelling(s.field)
        for s in layout.columns
        if s.required and s.field not in result.columns
    ]
    return result


def _with_unit(
    table: Table,
    spec: ColumnSpec,
    column: Column,
    unit: str | None,
    header: str,
    strict: bool,
    result: Mapping,
) -> Column:
    """The column with its multiplier (None when its unit is refused: the error is kept)."""
    assert spec.units is not None
    known = {normalise_header(k): (k, v) for k, v in spec.units.items()}
    accepted = ", ".join(spec.units)
    if unit is None:
        result.errors.append(
            table.reject(None, column.header, None, f"gives no unit (accepted: {accepted})")
        )
        return column
    if normalise_header(unit) in known:
        spelling, multiplier = known[normalise_header(unit)]
        parsed = Unit(spelling, multiplier, spec.currency, price_base(header))
        return Column(column.index, column.header, column.field, multiplier, parsed)
    reason = f"is a unit that is not understood (accepted: {accepted})"
    if strict or spec.currency is None:
        result.errors.append(table.reject(None, column.header, unit, reason))
        return column
    try:
        parsed = parse_unit(unit)
    except UnitNotUnderstood as e:
        result.errors.append(table.reject(None, column.header, unit, f"{reason}: {e}"))
        return column
    if parsed.currency not in (None, spec.currency):
        result.errors.append(
            table.reject(
                None,
                column.header,
                unit,
                f"is in {parsed.currency}, but this layout's amounts are in {spec.currency}",
            )
        )
        return column
    parsed = Unit(parsed.text, parsed.multiplier, spec.currency, parsed.price_base)
    base = f", price base: {parsed.price_base}" if parsed.price_base else ""
    result.warnings.append(
        f"{table.file}: column {column.header!r}: unit {unit!r} read as "
        f"{spec.currency} x {parsed.multiplier}{base}"
    )
    return Column(column.index, column.header, column.field, parsed.multiplier, parsed)


def _find(
    layout: Layout, header: str, *, strict: bool
) -> tuple[ColumnSpec | None, str | None, bool]:
    """(spec, unit, by synonym): exact spellings first, spellings with a unit, synonyms."""
    for spec in layout.columns:
        if any(normalise_header(h) == header for h in spec.headers):
            return spec, spec.default_unit, False
    for spec in layout.columns:
        matched, unit = _match(spec, header)
        if matched:
            return spec, unit, False
    if not strict:
        for spec in layout.columns:
            if any(normalise_header(h) == header for h in spec.synonyms):
                return spec, spec.default_unit, True
    return None, None, False


def choose_layout(table: Table, layouts: tuple[Layout, ...], *, strict: bool = False) -> Mapping:
    """The layout whose required columns are all present; refuse ambiguity or no match."""
    mappings = [map_columns(table, layout, strict=strict) for layout in layouts]
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
