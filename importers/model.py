"""What a parsed file is: editions (snapshots of a portfolio) and the projects they list."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class ProjectRow:
    """One project as one edition publishes it; None means "not published here"."""

    key: str
    row: int
    name: str
    details: dict[str, Any]  # the Project detail fields this layout publishes
    phase: str | None = None
    cost: Decimal | None = None
    planned_end: date | None = None
    withheld: bool = False  # the edition says its figures are deliberately not published
    withheld_reason: str | None = None
    rating: str | None = None
    narratives: dict[str, str] = field(default_factory=dict)  # "status", "cost", "schedule"
    by_name: bool = False  # published without an id: matched to a project by its name
    project_id: UUID | None = None  # the project it was matched to (default: from the key)
    id_column: str | None = None  # the header of the file's id column, for messages


@dataclass(frozen=True)
class Edition:
    """A published snapshot of a portfolio: the projects it lists, at its date."""

    series: str  # "panorama" or "gmpp"
    ref: str  # "2017-02" or "2020-21"
    date: date
    file: str
    projects: dict[str, ProjectRow]  # by key, in file order
    currency: str = "EUR"
    default_phase: str = "Cadrage"  # recorded at registration when the phase is not published
    record: str = "row"
    warnings: list[str] = field(default_factory=list)
    file_sha256: str = ""  # of the whole file (one file may hold several editions)
    unit: str | None = None  # how the file gives its amounts, e.g. "M€" or "£m"
    price_base: str | None = None  # "nominal", "real prices of 2024/25"; None: not stated
    headline: dict[str, Any] | None = None  # the figures the edition published, if given

    @property
    def source(self) -> str:
        """The events' source, e.g. `panorama:2017-02`."""
        return f"{self.series}:{self.ref}"

    def count_costed(self) -> int:
        """How many listed projects publish a cost."""
        return sum(1 for p in self.projects.values() if p.cost is not None and not p.withheld)

    def total_cost(self) -> Decimal:
        """The sum of the published costs, in the edition's currency units."""
        return sum(
            (p.cost for p in self.projects.values() if p.cost is not None and not p.withheld),
            Decimal(0),
        )
