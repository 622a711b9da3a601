"""The shared CSV/XLSX writer: formula-like text is neutralised, typed values keep their type."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import openpyxl
import pytest

from service.spreadsheet import csv_bytes, xlsx_bytes

COLUMNS = ("name", "amount", "count", "day", "flag")
TRIGGERS = ["=1+1", "+33 1 23", "-12", "@SUM(A1)", "\tcmd", "\rcmd", '=HYPERLINK("http://x")']


@pytest.mark.parametrize("text", TRIGGERS)
def test_a_csv_text_cell_that_starts_a_formula_is_neutralised(text: str) -> None:
    body = csv_bytes([[text, Decimal("-12.5"), -3, date(2024, 3, 1), True]], COLUMNS)
    (row,) = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert row == {
        "name": "'" + text,
        "amount": "-12.50",
        "count": "-3",
        "day": "2024-03-01",
        "flag": "true",
    }


def test_csv_leaves_ordinary_text_and_empty_cells_alone() -> None:
    body = csv_bytes(
        [["SI paie", None, 0, None, False], ["a=b", Decimal("0.125"), 1, None, None]], COLUMNS
    )
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert rows[1:] == [["SI paie", "", "0", "", "false"], ["a=b", "0.125", "1", "", ""]]


def test_a_csv_header_that_starts_a_formula_is_neutralised() -> None:
    body = csv_bytes([], ["=cmd", "ok"])
    assert body.decode("utf-8").splitlines() == ["'=cmd,ok"]


def _sheet(body: bytes) -> list[list[openpyxl.cell.cell.Cell]]:
    workbook = openpyxl.load_workbook(io.BytesIO(body))
    return [list(row) for row in workbook.active.iter_rows()]


@pytest.mark.parametrize("text", TRIGGERS)
def test_an_xlsx_text_cell_is_text_and_neutralised_and_numbers_are_numeric(text: str) -> None:
    recorded = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    row = [text, Decimal("-12.5"), -3, date(2024, 3, 1), recorded]
    header, cells = _sheet(xlsx_bytes([row], [*COLUMNS[:4], "recorded_at"]))
    assert [c.value for c in header] == [*COLUMNS[:4], "recorded_at"]
    name, amount, count, day, at = cells
    assert (name.value, name.data_type) == (
        "'" + text.replace("\r", "\n"),
        "s",
    )  # XML: CR read as LF
    assert (amount.value, amount.data_type) == (-12.5, "n")
    assert (count.value, count.data_type) == (-3, "n")
    assert day.is_date and day.value.date() == date(2024, 3, 1)
    assert at.is_date and at.value == datetime(2024, 3, 1, 12, 30)


def test_an_xlsx_workbook_has_no_formula_cell_whatever_the_text() -> None:
    body = xlsx_bytes([[t] for t in TRIGGERS], ["=header"])
    cells = [c for row in _sheet(body) for c in row]
    assert cells and all(c.data_type == "s" and c.value.startswith("'") for c in cells)
