"""Bounds on what an imported file may hold, so that a hostile file is refused in bounded memory."""

from __future__ import annotations

import os
from dataclasses import dataclass

from importers.errors import ImportRejected


@dataclass(frozen=True)
class Limits:
    """The largest file an import reads (docs/importing.md, "Bounds"); every field is > 0."""

    max_bytes: int = 16_000_000  # a CSV's size; an XLSX's size and its parts decompressed
    max_rows: int = 100_000  # the last row number (the header is row 1)
    max_columns: int = 1_000  # the last column number (XLSX: column ALL)
    max_cells: int = 1_000_000  # rows x columns, counted as the rows are read
    max_cell_chars: int = 100_000  # characters in one cell
    max_line_chars: int = 1_000_000  # characters in one CSV record (all its lines)

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, each overridden by its IMPORT_MAX_* variable when set."""
        d = cls()
        return cls(
            max_bytes=_positive(
                "IMPORT_MAX_BYTES", os.environ.get("IMPORT_MAX_BYTES"), d.max_bytes
            ),
            max_rows=_positive("IMPORT_MAX_ROWS", os.environ.get("IMPORT_MAX_ROWS"), d.max_rows),
            max_columns=_positive(
                "IMPORT_MAX_COLUMNS", os.environ.get("IMPORT_MAX_COLUMNS"), d.max_columns
            ),
            max_cells=_positive(
                "IMPORT_MAX_CELLS", os.environ.get("IMPORT_MAX_CELLS"), d.max_cells
            ),
            max_cell_chars=_positive(
                "IMPORT_MAX_CELL_CHARS", os.environ.get("IMPORT_MAX_CELL_CHARS"), d.max_cell_chars
            ),
            max_line_chars=_positive(
                "IMPORT_MAX_LINE_CHARS", os.environ.get("IMPORT_MAX_LINE_CHARS"), d.max_line_chars
            ),
        )


def _positive(name: str, raw: str | None, default: int) -> int:
    text = (raw or "").strip().replace("_", "")
    if not text:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise ImportRejected(name, value=raw, reason="is not a positive whole number")
    return int(text)
