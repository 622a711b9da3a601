"""Read CSV (UTF-8 or Windows-1252, `,` `;` or tab) and XLSX files into plain tables."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from service.imports.errors import ImportRejected

Cell = str | int | float | date | None

DELIMITERS: tuple[str, ...] = (",", ";", "\t")


def _c1_fallback(error: UnicodeError) -> tuple[str, int]:
    # Windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined; Windows itself maps
    # them to the C1 control characters of the same code, as Latin-1 does.
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return chr(error.object[error.start]), error.start + 1


codecs.register_error("panorama-c1", _c1_fallback)


@dataclass(frozen=True)
class Table:
    """A file's header and its records, each with its number in the file (header = 1)."""

    file: str
    header: list[str]
    rows: list[tuple[int, list[Cell]]]
    record: str = "row"  # what a record is called in messages ("column" once transposed)
    encoding: str = "utf-8"
    delimiter: str | None = None

    def reject(
        self, number: int | None, column: str | None, value: Cell, reason: str
    ) -> ImportRejected:
        """The error naming this file, the record and column, the value and the reason."""
        return ImportRejected(self.file, number, column, value, reason, record=self.record)


def decode(data: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8 (with or without BOM), else as Windows-1252."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="panorama-c1"), "cp1252"


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header into the most columns (`,` on a tie)."""
    best, best_count = ",", 0
    for delimiter in DELIMITERS:
        records = list(itertools.islice(csv.reader(io.StringIO(text), delimiter=delimiter), 5))
        count = len(records[0]) if records else 0
        if count > best_count:
            best, best_count = delimiter, count
    return best


def normalise_header(text: str) -> str:
    """Header text without accents, case or repeated whitespace, for matching synonyms."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", stripped.casefold().replace("\u2019", "'")).strip()


def is_blank(cell: Cell) -> bool:
    """True for None and for strings holding only whitespace."""
    return cell is None or (isinstance(cell, str) and not cell.strip())


def read_table(path: Path) -> Table:
    """Read a .csv or .xlsx file into a Table; any other extension is refused."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _read_xlsx(path)
    if suffix in {".csv", ".txt", ".tsv"}:
        return _read_csv(path)
    raise ImportRejected(path.name, reason=f"unsupported file type {suffix!r} (use .csv or .xlsx)")


def _read_csv(path: Path) -> Table:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImportRejected(path.name, reason=f"cannot be read: {e.strerror}") from None
    text, encoding = decode(data)
    delimiter = sniff_delimiter(text)
    try:
        records: list[list[Cell]] = [
            list(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        ]
    except csv.Error as e:
        raise ImportRejected(path.name, reason=f"is not valid CSV: {e}") from None
    return _table(path.name, records, encoding=encoding, delimiter=delimiter)


def _read_xlsx(path: Path) -> Table:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many kinds of errors on a damaged file
        raise ImportRejected(path.name, reason=f"is not a readable XLSX workbook: {e}") from None
    try:
        sheet = workbook.worksheets[0]
        records: list[list[Cell]] = [list(r) for r in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    return _table(path.name, records, encoding="xlsx", delimiter=None)


def _table(name: str, records: list[list[Cell]], *, encoding: str, delimiter: str | None) -> Table:
    if not records:
        raise ImportRejected(name, reason="is empty")
    header = ["" if c is None else str(c) for c in records[0]]
    rows = [(number, cells) for number, cells in enumerate(records[1:], start=2)]
    return Table(name, header, rows, encoding=encoding, delimiter=delimiter)


def transpose(table: Table) -> Table:
    """Swap rows and columns: a file with one column per record and one row per field."""
    records: list[list[Cell]] = [list(table.header)]
    records.extend(cells for _, cells in table.rows)
    width = max(len(r) for r in records)
    padded = [r + [None] * (width - len(r)) for r in records]
    columns = [list(c) for c in zip(*padded, strict=True)]
    header = ["" if c is None else str(c) for c in columns[0]]
    rows = [(number, cells) for number, cells in enumerate(columns[1:], start=2)]
    return replace(table, header=header, rows=rows, record="column")
