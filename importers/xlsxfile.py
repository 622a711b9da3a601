"""Stream the first sheet of an XLSX file within the import bounds, refusing at the cell."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from importers.errors import ImportRejected
from importers.limits import Limits

CHUNK = 1 << 16
DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def read_xlsx(path: Path, limits: Limits) -> list[list[Any]]:
    """The rows of the first sheet, from row 1, each padded to the widest row."""
    name = path.name
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise _refuse(
            name,
            f"the file is {size:,} bytes, more than the bound of "
            f"{limits.max_bytes:,} (IMPORT_MAX_BYTES)",
        )
    _check_archive(path, limits)
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many kinds of errors on a damaged file
        raise _refuse(name, f"is not a readable XLSX workbook: {_why(e)}") from None
    try:
        if not workbook.worksheets:
            raise _refuse(name, "is not a readable XLSX workbook: it has no worksheet")
        return _rows(name, workbook, workbook.worksheets[0], limits)
    finally:
        workbook.close()


def column_letter(number: int) -> str:
    """The spreadsheet name of a column: 1 is A, 27 is AA, 16384 is XFD."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _refuse(name: str, reason: str, row: int = 1, column: int = 1) -> ImportRejected:
    return ImportRejected(name, row, column_letter(max(column, 1)), reason=reason)


def _why(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _check_archive(path: Path, limits: Limits) -> None:
    """A zip whose parts, really decompressed, fit the bound and declare no DTD (XML bombs)."""
    name = path.name
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise _refuse(name, f"is not an XLSX workbook (not a zip archive: {_why(e)})") from None
    with archive:
        infos = archive.infolist()
        declared = sum(i.file_size for i in infos)
        if declared > limits.max_bytes:
            biggest = max(infos, key=lambda i: i.file_size)
            raise _refuse(
                name,
                f"its parts decompress to {declared:,} bytes ({biggest.filename}: "
                f"{biggest.file_size:,}), more than the bound of {limits.max_bytes:,} "
                "(IMPORT_MAX_BYTES): a zip bomb?",
            )
        if "[Content_Types].xml" not in {i.filename for i in infos}:
            raise _refuse(name, "is not an XLSX workbook (a zip without [Content_Types].xml)")
        total = 0
        for info in infos:
            total += _scan(archive, info, limits.max_bytes - total, name)


def _scan(archive: zipfile.ZipFile, info: zipfile.ZipInfo, allowance: int, name: str) -> int:
    """The bytes a part really decompresses to (zipfile stops at the declared size)."""
    read, tail = 0, b""
    xml = info.filename.endswith((".xml", ".rels"))
    try:
        with archive.open(info) as part:
            while chunk := part.read(CHUNK):
                read += len(chunk)
                if read > allowance:
                    raise _refuse(
                        name, f"{info.filename} decompresses beyond the bound (IMPORT_MAX_BYTES)"
                    )
                if xml and DTD.search(tail + chunk):
                    raise _refuse(
                        name,
                        f"{info.filename} declares a DTD or entities, which "
                        "XLSX never needs (an XML bomb?)",
                    )
                tail = chunk[-16:]
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        raise _refuse(name, f"is a damaged XLSX workbook ({info.filename}: {_why(e)})") from None
    return read


def _rows(name: str, workbook: Any, sheet: Any, limits: Limits) -> list[list[Any]]:
    rows: list[list[Any]] = []
    width, row, column = 0, 1, 1
    try:
        for row, cells in _parsed_rows(workbook, sheet):
            if row > limits.max_rows:
                column = cells[0]["column"] if cells else 1
                raise _refuse(
                    name,
                    f"is beyond the last row allowed, {limits.max_rows:,} (IMPORT_MAX_ROWS)",
                    row,
                    column,
                )
            if row <= len(rows):
                continue  # out of order or repeated: openpyxl's iter_rows drops it too
            values: list[Any] = []
            for cell in cells:
                column = cell["column"]
                if column > limits.max_columns:
                    raise _refuse(
                        name,
                        f"is beyond the last column allowed, "
                        f"{column_letter(limits.max_columns)} "
                        "(IMPORT_MAX_COLUMNS)",
                        row,
                        column,
                    )
                _check_value(name, cell["value"], row, column, limits)
                values.extend([None] * (column - len(values) - 1))
                values.append(cell["value"])
            width = max(width, len(values))
            if row * width > limits.max_cells:
                raise _refuse(
                    name,
                    f"the sheet has more than {limits.max_cells:,} cells (IMPORT_MAX_CELLS)",
                    row,
                    width,
                )
            rows.extend([] for _ in range(row - len(rows) - 1))
            rows.append(values)
    except ImportRejected:
        raise
    except Exception as e:  # a damaged sheet: openpyxl and the XML parser raise many kinds
        raise _refuse(name, f"is a damaged XLSX worksheet: {_why(e)}", row, column) from None
    declared_rows, declared_width = sheet.max_row or 0, sheet.max_column or 0
    if declared_rows <= limits.max_rows and declared_width <= limits.max_columns:
        if max(declared_rows, len(rows)) * max(declared_width, width) <= limits.max_cells:
            # as openpyxl pads to the declared dimension when it is within the bounds
            width = max(width, declared_width)
            rows.extend([] for _ in range(declared_rows - len(rows)))
    return [r + [None] * (width - len(r)) for r in rows]


def _check_value(name: str, value: Any, row: int, column: int, limits: Limits) -> None:
    if not isinstance(value, str):
        return
    if len(value) > limits.max_cell_chars:
        raise _refuse(
            name,
            f"the cell has {len(value):,} characters, more than the bound of "
            f"{limits.max_cell_chars:,} (IMPORT_MAX_CELL_CHARS)",
            row,
            column,
        )
    if control := CONTROL.search(value):
        raise _refuse(
            name, f"holds the control character U+{ord(control.group()):04X}", row, column
        )


def _parsed_rows(workbook: Any, sheet: Any) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(row number, its cells) as written in the sheet: the parser openpyxl's read-only
    iter_rows uses, without its padding to the sheet's declared dimension (which a hostile
    file sets to XFD1048576)."""
    from openpyxl.worksheet._reader import WorkSheetParser

    with workbook._archive.open(sheet._worksheet_path) as source:
        parser = WorkSheetParser(
            source,
            sheet._shared_strings,
            data_only=workbook.data_only,
            epoch=workbook.epoch,
            date_formats=workbook._date_formats,
            timedelta_formats=workbook._timedelta_formats,
        )
        yield from parser.parse()
