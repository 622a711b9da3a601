"""A page's table as CSV or XLSX, neutralised against spreadsheet formulas.

`table_response` is the one entry point: swap its body for the shared spreadsheet writer
when it lands, the pages will not change.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Response
from openpyxl import Workbook

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(h) for h in header])
    for row in rows:
        writer.writerow([_text(neutralise(v)) for v in row])
    return out.getvalue().encode("utf-8-sig")


def _cell(value: Any) -> Any:
    value = neutralise(value)
    if isinstance(value, Decimal | int | float | date | datetime) and not isinstance(value, bool):
        return value.replace(tzinfo=None) if isinstance(value, datetime) else value
    return _text(value) if value is not None else None


def _xlsx(header: Sequence[str], rows: Sequence[Sequence[Any]], reflects: dict[str, Any]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "data"
    sheet.append([neutralise(h) for h in header])
    for row in rows:
        sheet.append([_cell(v) for v in row])
    about = book.create_sheet("reflects")
    for key, value in reflects.items():
        about.append([key, _text(value)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def table_response(
    fmt: str,
    name: str,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    reflects: dict[str, Any],
) -> Response:
    """The download of one table (`fmt` csv or xlsx), stating what it reflects in headers."""
    if fmt == "xlsx":
        response = Response(_xlsx(header, rows, reflects), mimetype=XLSX)
    else:
        response = Response(_csv(header, rows), mimetype="text/csv")
        response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    for key, value in reflects.items():
        response.headers[f"X-Panorama-{key.replace('_', '-').title()}"] = _text(value)
    return response
