"""Importing the six GMPP years: status reports, costs, schedules, and safety."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from domain.application import Portfolio
from domain.values import RATINGS
from importers.errors import ImportRejected
from importers.gmpp import parse_gmpp
from importers.matching import project_id
from importers.model import Edition
from importers.run import import_editions
from tests.unit.imports.conftest import GMPP
from tests.unit.imports.helpers import event_count, portfolio_as_of, series_ids, totals
from tests.unit.imports.test_gmpp_parse import ROW, gmpp_text, with_cell


@pytest.fixture(scope="module")
def editions() -> list[Edition]:
    return [parse_gmpp(path) for path in sorted(GMPP.glob("gmpp_*.csv"))]


def test_folding_gives_each_years_portfolio(portfolio: Portfolio, editions: list[Edition]) -> None:
    summary = import_editions(portfolio, editions)
    assert summary.events == event_count(portfolio)
    ids = series_ids(editions)
    for edition in editions:
        rows, costed, total = totals(portfolio_as_of(portfolio, ids, edition.date))
        assert (rows, costed, total) == (
            len(edition.projects),
            edition.count_costed(),
            edition.total_cost(),
        ), edition.ref
    _, _, total = totals(portfolio_as_of(portfolio, ids, date(2021, 3, 31)))
    assert (total / Decimal(10**9)).quantize(Decimal("0.1")) == Decimal("542.0")  # £bn


def test_delivery_confidence_becomes_status_reports(
    portfolio: Portfolio, editions: list[Edition]
) -> None:
    import_editions(portfolio, editions)
    events = portfolio.project_events(project_id("gmpp", "MOD_0106_1617-Q1"))
    reports = [e for e in events if type(e).__name__ == "StatusReported"]
    assert [(e.source, e.effective_date) for e in reports][:2] == [
        ("gmpp:2019-20", date(2020, 3, 31)), ("gmpp:2020-21", date(2021, 3, 31)),
    ]  # fmt: skip
    assert reports[1].rating == "Amber/Red" and reports[1].narrative.startswith("IPA delivery")
    every = [e for pid in series_ids(editions) for e in portfolio.project_events(pid)]
    statuses = [e for e in every if type(e).__name__ == "StatusReported"]
    assert {e.rating for e in statuses} <= set(RATINGS)
    assert all(e.narrative for e in statuses if e.rating == "Red")
    assert {e.source for e in every} == {e.source for e in editions}


def test_reimporting_records_nothing(portfolio: Portfolio, editions: list[Edition]) -> None:
    import_editions(portfolio, editions)
    before = event_count(portfolio)
    summary = import_editions(portfolio, editions)
    assert (summary.events, len(summary.skipped)) == (0, 6)
    assert event_count(portfolio) == before


def test_a_failure_while_recording_records_nothing(
    portfolio: Portfolio, write: Callable[..., Path]
) -> None:
    first = parse_gmpp(write("gmpp_2020_21.csv", gmpp_text(ROW)))
    exempt = with_cell("Project - Start Date", "Exempt under Section 24")
    second = parse_gmpp(
        write("gmpp_2021_22.csv", gmpp_text(with_cell("Project - End Date", "01/01/2018", exempt)))
    )
    with pytest.raises(ImportRejected) as e:
        import_editions(portfolio, [first, second])
    assert str(e.value).startswith("gmpp_2021_22.csv, row 2: 'Road' cannot be recorded")
    assert "planned_end is before the project's start" in str(e.value)
    assert event_count(portfolio) == 0
