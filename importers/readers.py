"""Read CSV (UTF-8 or Windows-1252, `,` `;` or tab) and XLSX files into plain tables."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from importers.csvfile import read_csv
from importers.errors import ImportRejected
from importers.limits import Limits
from importers.xlsxfile import read_xlsx

Cell = str | int | float | date | None


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


def normalise_header(text: str) -> str:
    """Header text without accents, case or repeated whitespace, for matching synonyms."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", stripped.casefold().replace("\u2019", "'")).strip()


def is_blank(cell: Cell) -> bool:
    """True for None and for strings holding only whitespace."""
    return cell is None or (isinstance(cell, str) and not cell.strip())


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as e:
        raise ImportRejected(path.name, reason=f"cannot be read: {e.strerror}") from None
    return digest.hexdigest()


def read_table(path: Path, limits: Limits | None = None) -> Table:
    """Read a .csv or .xlsx file into a Table within the bounds (default: IMPORT_MAX_*)."""
    suffix = path.suffix.lower()
    if suffix not in {".xlsx", ".csv", ".txt", ".tsv"}:
        raise ImportRejected(
            path.name, reason=f"unsupported file type {suffix!r} (use .csv or .xlsx)"
        )
    bounds = limits or Limits.from_env()
    if suffix == ".xlsx":
        try:
            sheet: list[list[Cell]] = read_xlsx(path, bounds)
        except OSError as e:
            raise ImportRejected(path.name, reason=f"cannot be read: {e.strerror}") from None
        return _table(path.name, sheet, encoding="xlsx", delimiter=None)
    rows, encoding, delimiter = read_csv(path, bounds)
    records: list[list[Cell]] = [list(r) for r in rows]
    return _table(path.name, records, encoding=encoding, delimiter=delimiter)


def _table(name: str, records: list[list[Cell]], *, encoding: str, delimiter: str | None) -> Table:
    if not records:
        raise ImportRejected(name, 1, 1, reason="is empty")
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
