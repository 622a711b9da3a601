"""Readers: encodings, delimiters, XLSX, header normalisation and transposition."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from importers.errors import ImportRejected
from importers.limits import Limits
from importers.readers import decode, normalise_header, read_table, transpose


def test_utf8_with_bom() -> None:
    assert decode("\ufeffMinistère".encode()) == ("Ministère", "utf-8")


def test_windows_1252() -> None:
    assert decode("Coût estimé – £".encode("cp1252")) == ("Coût estimé – £", "cp1252")


def test_bytes_undefined_in_windows_1252_fall_back_to_latin_1() -> None:
    assert decode(b"Quantum\x9d \xa3") == ("Quantum\x9d £", "cp1252")


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters(write: Callable[..., Path], delimiter: str) -> None:
    content = delimiter.join(["a", "b", '"c, d; e"']) + "\n" + delimiter.join("123") + "\n"
    table = read_table(write("t.csv", content))
    assert table.delimiter == delimiter
    assert table.header == ["a", "b", "c, d; e"]
    assert table.rows == [(2, ["1", "2", "3"])]


def test_multiline_cells_keep_record_numbers(write: Callable[..., Path]) -> None:
    table = read_table(write("t.csv", 'a,b\n"x\ny",1\nz,2\n'))
    assert [n for n, _ in table.rows] == [2, 3]


def test_headers_are_normalised() -> None:
    assert normalise_header(" Ministère  porteur ") == "ministere porteur"
    assert normalise_header("DURÉE prévisionnelle\nen année") == "duree previsionnelle en annee"


def test_xlsx(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Nom", "Début", "Coût"])
    sheet.append(["X", datetime(2013, 7, 1), 52.4])
    workbook.save(tmp_path / "t.xlsx")
    table = read_table(tmp_path / "t.xlsx")
    assert table.header == ["Nom", "Début", "Coût"]
    assert table.rows == [(2, ["X", datetime(2013, 7, 1), 52.4])]


def test_unknown_extension(write: Callable[..., Path]) -> None:
    with pytest.raises(ImportRejected, match="unsupported file type '.ods'"):
        read_table(write("t.ods", "x"))


def test_transpose(write: Callable[..., Path]) -> None:
    table = transpose(read_table(write("t.csv", "id,A,B\nname,a,b\n")))
    assert table.header == ["id", "name"]
    assert table.rows == [(2, ["A", "a"]), (3, ["B", "b"])]
    assert table.record == "column"


def _understated_dimension(tmp_path: Path) -> Path:
    """A workbook with cells down to C5 whose sheet declares the dimension A1:B2."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Nom", "Coût"])
    sheet.append(["X", 1])
    sheet["C5"] = "late"
    workbook.save(tmp_path / "full.xlsx")
    with zipfile.ZipFile(tmp_path / "full.xlsx") as old:
        with zipfile.ZipFile(tmp_path / "t.xlsx", "w") as new:
            for info in old.infolist():
                data = old.read(info)
                if info.filename == "xl/worksheets/sheet1.xml":
                    data = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:B2"', data)
                new.writestr(info, data)
    return tmp_path / "t.xlsx"


def test_xlsx_rows_are_read_past_an_understated_dimension(tmp_path: Path) -> None:
    table = read_table(_understated_dimension(tmp_path))
    assert table.header == ["Nom", "Coût", ""]
    assert table.rows[-1] == (5, [None, None, "late"])


def test_xlsx_beyond_the_configured_columns_names_the_cell(tmp_path: Path) -> None:
    with pytest.raises(ImportRejected, match=r"t\.xlsx, row 5, column 'C': is beyond the last"):
        read_table(_understated_dimension(tmp_path), Limits(max_columns=2))


def test_csv_beyond_the_configured_rows_names_the_row(write: Callable[..., Path]) -> None:
    with pytest.raises(ImportRejected, match=r"t\.csv, row 3, column 1: is beyond the last row"):
        read_table(write("t.csv", "a,b\n1,2\n3,4\n"), Limits(max_rows=2))


def test_a_csv_cell_is_bounded_in_characters(write: Callable[..., Path]) -> None:
    with pytest.raises(ImportRejected, match=r"row 2, column 2: the cell has 11 characters"):
        read_table(write("t.csv", "a,b\n1,abcdefghijk\n"), Limits(max_cell_chars=10))


def test_the_bounds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPORT_MAX_ROWS", "5_000")
    assert Limits.from_env().max_rows == 5000
    monkeypatch.setenv("IMPORT_MAX_ROWS", "-1")
    with pytest.raises(ImportRejected, match="IMPORT_MAX_ROWS: '-1' is not a positive"):
        Limits.from_env()
