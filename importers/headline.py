"""Headline figures an edition published (e.g. the panorama's `editions_summary.csv`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from importers.cells import CellError, one_line, parse_decimal
from importers.errors import ImportRejected
from importers.model import Edition
from importers.readers import Cell, Table, is_blank, normalise_header, read_table

SIDECARS = ("editions_summary.csv", "{stem}.headline.csv")
REF_HEADERS = ("edition_ref", "edition", "ref")
COUNTS = {"projects": "projects", "interministerial_projects": "interministerial_projects"}
MEANS = {
    "mean_duration_years": "mean_duration_years",
    "mean_schedule_drift_pct": "mean_schedule_drift_pct",
    "mean_budget_drift_pct": "mean_budget_drift_pct",
}
NOTES = {
    "edition_label_as_published": "label",
    "label": "label",
    "total_cost_label": "total_cost_label",
    "source": "source",
    "confidence": "confidence",
}
TOTAL = re.compile(r"total_cost_(?:(?P<scale>bn|m|k)_)?(?P<currency>eur|gbp|usd)")
SCALES = {"bn": Decimal(10) ** 9, "m": Decimal(10) ** 6, "k": Decimal(10) ** 3, None: Decimal(1)}


@dataclass(frozen=True)
class Headlines:
    """A headline file: its rows by edition reference, read when an edition asks for one."""

    table: Table
    refs: dict[str, tuple[int, list[Cell]]]
    columns: dict[str, int]

    def for_edition(self, edition: Edition) -> dict[str, Any] | None:
        """The headline figures published with `edition`, None when the file has none."""
        found = self.refs.get(edition.ref)
        if found is None:
            return None
        number, cells = found
        headline: dict[str, Any] = {}
        for header, index in self.columns.items():
            cell = cells[index] if index < len(cells) else None
            if is_blank(cell):
                continue
            name, value = self._figure(edition, number, header, cell)
            headline[name] = value
        return headline or None

    def _figure(self, edition: Edition, number: int, header: str, cell: Cell) -> tuple[str, Any]:
        key = normalise_header(header)
        if key in NOTES:
            return NOTES[key], one_line(cell)
        try:
            value = parse_decimal(cell, decimal_comma=False)
        except CellError as e:
            raise self.table.reject(number, header, cell, str(e)) from None
        if key in COUNTS:
            if value != value.to_integral_value() or value < 0:
                raise self.table.reject(number, header, cell, "is not a count of projects")
            return COUNTS[key], int(value)
        if key in MEANS:
            return MEANS[key], value
        total = TOTAL.fullmatch(key)
        assert total is not None
        if total["currency"].upper() != edition.currency:
            reason = f"is in {total['currency'].upper()}, but {edition.source} is in "
            raise self.table.reject(number, header, cell, reason + edition.currency)
        return "total_cost", value * SCALES[total["scale"]]


def read_headlines(path: Path) -> Headlines:
    """Read a headline file: one row per edition, `edition_ref` and the published figures."""
    table = read_table(path)
    headers = {normalise_header(h): i for i, h in enumerate(table.header) if h.strip()}
    ref_column = next((headers[h] for h in REF_HEADERS if h in headers), None)
    if ref_column is None:
        raise ImportRejected(table.file, 1, reason="has no 'edition_ref' column")
    columns = {
        table.header[i].strip(): i
        for h, i in headers.items()
        if h in COUNTS or h in MEANS or h in NOTES or TOTAL.fullmatch(h)
    }
    refs: dict[str, tuple[int, list[Cell]]] = {}
    for number, cells in table.rows:
        ref = one_line(cells[ref_column]) if ref_column < len(cells) else None
        if not ref:
            continue
        if ref in refs:
            raise table.reject(
                number, table.header[ref_column], ref, f"is already given in row {refs[ref][0]}"
            )
        refs[ref] = (number, cells)
    return Headlines(table, refs, columns)


def sidecar(data_file: Path) -> Path | None:
    """The headline file next to a data file (`editions_summary.csv`, `<stem>.headline.csv`)."""
    for name in SIDECARS:
        candidate = data_file.with_name(name.format(stem=data_file.stem))
        if candidate.is_file():
            return candidate
    return None


def with_headlines(editions: Sequence[Edition], headlines: Headlines) -> list[Edition]:
    """The editions, each with the headline figures the file gives for it (if any)."""
    return [
        replace(edition, headline=headlines.for_edition(edition) or edition.headline)
        for edition in editions
    ]
