"""Stream a CSV file into records within the import bounds, refusing at the row and column."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from importers.errors import ImportRejected
from importers.limits import Limits

CHUNK = 1 << 20
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
UNDECODED = re.compile(r"[\udc80-\udcff]")
DELIMITERS: tuple[str, ...] = (",", ";", "\t")


def _c1_fallback(error: UnicodeError) -> tuple[str, int]:
    # Windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined; Windows itself maps
    # them to the C1 control characters of the same code, as Latin-1 does.
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return chr(error.object[error.start]), error.start + 1


codecs.register_error("panorama-c1", _c1_fallback)


class _RecordTooLong(Exception):
    pass


class _Lines:
    """The lines of a text stream for csv.reader; a record longer than `limit` stops it."""

    def __init__(self, stream: IO[str], limit: int) -> None:
        self.stream, self.limit = stream, limit
        self.record: list[str] = []
        self.chars = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.stream.readline(self.limit - self.chars + 1)
        if not line:
            raise StopIteration
        self.record.append(line)
        self.chars += len(line)
        if self.chars > self.limit:
            raise _RecordTooLong
        return line

    def next_record(self) -> None:
        self.record, self.chars = [], 0

    def fields_so_far(self, delimiter: str) -> int:
        """How many fields the unfinished record has started (the column at fault)."""
        try:
            parsed = next(csv.reader(["".join(self.record)], delimiter=delimiter), [])
        except csv.Error:
            return 1
        return max(1, len(parsed))


def detect_encoding(path: Path) -> str:
    """utf-8 (BOM or not) if the whole file is UTF-8, cp1252 if it never was, else "mixed"."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    ascii_so_far = True
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                before = e.object[: e.start]
                return "cp1252" if ascii_so_far and before.isascii() else "mixed"
            ascii_so_far = ascii_so_far and chunk.isascii()
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252" if ascii_so_far else "mixed"
    return "utf-8"


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first record into the most columns (`,` on a tie)."""
    best, best_count = ",", 0
    for delimiter in DELIMITERS:
        try:
            first = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
        except csv.Error:
            first = []
        if len(first) > best_count:
            best, best_count = delimiter, len(first)
    return best


def _open(path: Path, encoding: str) -> IO[str]:
    if encoding == "utf-8":
        return path.open(encoding="utf-8-sig", newline="")
    if encoding == "mixed":
        return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    return path.open(encoding="cp1252", errors="panorama-c1", newline="")


def read_csv(path: Path, limits: Limits) -> tuple[list[list[str]], str, str]:
    """The records of a CSV file, its encoding and delimiter; refused beyond the bounds."""
    name = path.name
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise ImportRejected(
                name,
                1,
                1,
                reason=f"the file is {size:,} bytes, more than the bound of "
                f"{limits.max_bytes:,} (IMPORT_MAX_BYTES)",
            )
        encoding = detect_encoding(path)
        with _open(path, encoding) as stream:
            delimiter = sniff_delimiter(stream.read(min(limits.max_line_chars, CHUNK)))
            stream.seek(0)
            records = list(_records(name, stream, delimiter, limits, encoding == "mixed"))
    except OSError as e:
        raise ImportRejected(name, reason=f"cannot be read: {e.strerror}") from None
    return records, ("utf-8" if encoding == "mixed" else encoding), delimiter


def _records(
    name: str, stream: IO[str], delimiter: str, limits: Limits, mixed: bool
) -> Iterator[list[str]]:
    if csv.field_size_limit() <= limits.max_line_chars:
        csv.field_size_limit(limits.max_line_chars + 1)  # the record bound below comes first
    lines = _Lines(stream, limits.max_line_chars)
    reader = csv.reader(lines, delimiter=delimiter)
    row, cells = 0, 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except _RecordTooLong:
            raise ImportRejected(
                name,
                row + 1,
                lines.fields_so_far(delimiter),
                reason=f"the record is longer than {limits.max_line_chars:,} characters "
                "(IMPORT_MAX_LINE_CHARS)",
            ) from None
        except csv.Error as e:
            raise ImportRejected(
                name, row + 1, lines.fields_so_far(delimiter), reason=f"is not valid CSV: {e}"
            ) from None
        lines.next_record()
        row += 1
        cells += len(record)
        _check(name, row, record, cells, limits, mixed)
        yield record


def _check(name: str, row: int, record: list[str], cells: int, limits: Limits, mixed: bool) -> None:
    if row > limits.max_rows:
        raise ImportRejected(
            name,
            row,
            1,
            reason=f"is beyond the last row allowed, {limits.max_rows:,} (IMPORT_MAX_ROWS)",
        )
    if len(record) > limits.max_columns:
        raise ImportRejected(
            name,
            row,
            limits.max_columns + 1,
            reason=f"the row has {len(record):,} columns, "
            f"more than the bound of {limits.max_columns:,} (IMPORT_MAX_COLUMNS)",
        )
    if cells > limits.max_cells:
        raise ImportRejected(
            name,
            row,
            len(record),
            reason=f"the file has more than {limits.max_cells:,} cells (IMPORT_MAX_CELLS)",
        )
    for column, cell in enumerate(record, start=1):
        if len(cell) > limits.max_cell_chars:
            raise ImportRejected(
                name,
                row,
                column,
                reason=f"the cell has {len(cell):,} characters, more than "
                f"the bound of {limits.max_cell_chars:,} (IMPORT_MAX_CELL_CHARS)",
            )
        if control := CONTROL.search(cell):
            raise ImportRejected(
                name,
                row,
                column,
                reason=f"holds the control character "
                f"U+{ord(control.group()):04X} (is this a text file?)",
            )
        if mixed and (bad := UNDECODED.search(cell)):
            raise ImportRejected(
                name,
                row,
                column,
                reason=f"holds the byte 0x{ord(bad.group()) - 0xDC00:02X}, "
                "which is not UTF-8, while the rest of the file is UTF-8 (mixed encodings)",
            )
