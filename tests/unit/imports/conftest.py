"""Fixtures of the importer tests: the shared real data and an in-memory portfolio."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from domain.application import Portfolio
from tests.conftest import SHARED_DATA

PANORAMA = SHARED_DATA / "panorama"
DERIVED = PANORAMA / "derived"
RAW = PANORAMA / "raw"
GMPP = SHARED_DATA / "gmpp" / "raw"
LONG = DERIVED / "panorama_all_editions_long.csv"


def make_portfolio() -> Portfolio:
    """A portfolio on the in-memory store, with a fixed today."""
    return Portfolio(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, today=lambda: date(2026, 12, 1)
    )


@pytest.fixture
def portfolio() -> Portfolio:
    return make_portfolio()


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write text (or bytes) to a file in tmp_path and return its path."""

    def _write(name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        data = content if isinstance(content, bytes) else content.encode(encoding)
        path.write_bytes(data)
        return path

    return _write
