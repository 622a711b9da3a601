"""The one writer of CSV and XLSX files: numbers stay numbers, text never runs as a formula.

A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return would be read by a
spreadsheet as a formula (OWASP "CSV injection"), so it is written with a leading `'`.
Amounts (Decimal, int), dates and booleans keep their type: -12.5 stays a number.
CSV comes in two dialects: RFC 4180 (UTF-8, comma, decimal point) and `excel-fr` (UTF-8 with
a BOM, semicolon, decimal comma), which Excel opens as is in a French locale.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from openpyxl import Workbook

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file separates cells and writes decimals, and whether it starts with a BOM."""

    delimiter: str = ","
    decimal: str = "."
    bom: bool = False


RFC4180 = CsvDialect()
EXCEL_FR = CsvDialect(delimiter=";", decimal=",", bom=True)
DIALECTS = {"rfc4180": RFC4180, "excel-fr": EXCEL_FR}


def neutralise(text: str) -> str:
    """The text as a spreadsheet shows it literally: a formula trigger gets a leading `'`."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _decimal_text(value: Decimal) -> str:
    if value == value.quantize(Decimal("0.01")):
        return f"{value:.2f}"
    return format(value, "f")


def csv_cell(value: Any, decimal: str = ".") -> str:
    """One value as CSV text: typed values as written, anything else as neutralised text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _decimal_text(value).replace(".", decimal)
    if isinstance(value, float):
        return str(value).replace(".", decimal)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return neutralise(str(value))


def csv_text(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], dialect: CsvDialect = RFC4180
) -> str:
    """A CSV document (CRLF): a header, then one line per row, cells through csv_cell."""
    out = io.StringIO()
    # CRLF, so that a cell holding \r is quoted too
    writer = csv.writer(out, delimiter=dialect.delimiter, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in columns])
    for row in rows:
        writer.writerow([csv_cell(v, dialect.decimal) for v in row])
    return ("\ufeff" if dialect.bom else "") + out.getvalue()


def csv_bytes(
    rows: Iterable[Sequence[Any]], columns: Sequence[str], dialect: CsvDialect = RFC4180
) -> bytes:
    """csv_text encoded as UTF-8 (the excel-fr dialect's BOM first)."""
    return csv_text(columns, rows, dialect).encode("utf-8")


def xlsx_cell(value: Any) -> Any:
    """One value as an XLSX cell: numbers, dates and booleans typed, text neutralised."""
    if value is None or isinstance(value, bool | int | float | Decimal):
        return value
    if isinstance(value, datetime):  # Excel has no time zones: written as UTC
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return value
    return neutralise(str(value))


def xlsx_bytes(rows: Iterable[Sequence[Any]], columns: Sequence[str], sheet: str = "data") -> bytes:
    """A one-sheet XLSX workbook: a header row, then one row per row, cells through xlsx_cell."""
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    worksheet.append([neutralise(c) for c in columns])
    for row in rows:
        worksheet.append([xlsx_cell(v) for v in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
