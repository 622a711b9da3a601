"""Why an import is refused: the file, row, column and value at fault, and the reason."""

from __future__ import annotations

from typing import Any


def _show(value: Any) -> str:
    text = str(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return repr(text)


class ImportRejected(Exception):
    """A file (or one of its rows) cannot be imported; nothing was recorded."""

    def __init__(
        self,
        file: str,
        row: int | None = None,
        column: str | int | None = None,
        value: Any = None,
        reason: str = "cannot be imported",
        *,
        record: str = "row",
    ) -> None:
        self.file = file
        self.record = record
        self.row = row
        self.column = column
        self.value = value
        self.reason = reason
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The one-line explanation: `file, row N, column 'C': 'value' reason`."""
        where = [self.file]
        if self.row is not None:
            where.append(f"{self.record} {self.row}")
        if isinstance(self.column, int):
            where.append(f"column {self.column}")
        elif self.column is not None:
            where.append(f"column {self.column!r}")
        head = ", ".join(where)
        if self.value is not None:
            return f"{head}: {_show(self.value)} {self.reason}"
        return f"{head}: {self.reason}"

    def __str__(self) -> str:
        return self.message


class BackdatedEdition(ImportRejected):
    """An edition older than the newest one imported differs from what was recorded."""


class ImportConflict(Exception):
    """Another writer changed a project while the import ran; nothing was recorded."""
