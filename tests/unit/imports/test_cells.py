"""Cell parsers: numbers, dates and flags in every spelling the published files use."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from importers.cells import CellError, money, parse_bool, parse_date, parse_decimal


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("12,3", Decimal("12.3")),
        ("12.3", Decimal("12.3")),
        ("1 234,5", Decimal("1234.5")),
        ("1\u00a0234,5", Decimal("1234.5")),
        ("1.234,5", Decimal("1234.5")),
        ("1,234.5", Decimal("1234.5")),
        (" 496.4 ", Decimal("496.4")),
        (7, Decimal(7)),
        (53.02, Decimal("53.02")),
        (3.750684931506849, Decimal("3.750684931506849")),
        ("-3", Decimal(-3)),
    ],
)
def test_decimal_comma_numbers(cell: object, expected: Decimal) -> None:
    assert parse_decimal(cell, decimal_comma=True) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("£1,234.56", Decimal("1234.56")),
        ("£2,013.02", Decimal("2013.02")),
        ("£32,614", Decimal(32614)),
        ("0%", Decimal(0)),
        ("-23%", Decimal(-23)),
        ("-19.0", Decimal("-19.0")),
        ("1443.7", Decimal("1443.7")),
    ],
)
def test_english_money_and_percent(cell: str, expected: Decimal) -> None:
    assert parse_decimal(cell, decimal_comma=False) == expected


@pytest.mark.parametrize("cell", ["12,3,4", "1.2.3,4", "abc", "", "12,34,5", ".", "1 2x"])
def test_not_numbers(cell: str) -> None:
    with pytest.raises(CellError):
        parse_decimal(cell, decimal_comma=True)


def test_english_refuses_a_misgrouped_thousand() -> None:
    with pytest.raises(CellError, match="not a number"):
        parse_decimal("12,34", decimal_comma=False)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (42677, date(2016, 11, 3)),
        (43159.0, date(2018, 2, 28)),
        ("42677", date(2016, 11, 3)),
        ("2013-07-01", date(2013, 7, 1)),
        ("2025-02-28 00:00:00", date(2025, 2, 28)),
        ("2025-02-28T10:00:00", date(2025, 2, 28)),
        ("08/07/2014", date(2014, 7, 8)),
        ("1/4/2024", date(2024, 4, 1)),
        ("2013-07", date(2013, 7, 1)),
        ("juillet 2013", date(2013, 7, 1)),
        ("Février 2017", date(2017, 2, 1)),
        (datetime(2016, 11, 3, 0, 0), date(2016, 11, 3)),
        (date(2016, 11, 3), date(2016, 11, 3)),
    ],
)
def test_dates(cell: object, expected: date) -> None:
    assert parse_date(cell) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("cell", ["31/02/2020", "2020-13-01", "avril 15", "soon", "0", -5])
def test_not_dates(cell: object) -> None:
    with pytest.raises(CellError):
        parse_date(cell)  # type: ignore[arg-type]


@pytest.mark.parametrize(("cell", "expected"), [("Oui", True), ("non", False), ("YES", True)])
def test_flags(cell: str, expected: bool) -> None:
    assert parse_bool(cell) is expected


def test_not_a_flag() -> None:
    with pytest.raises(CellError, match="Oui or Non"):
        parse_bool("peut-être")


def test_money_is_exact() -> None:
    assert money(Decimal("53.02"), 1_000_000) == Decimal(53_020_000)
    assert str(money(Decimal("2553.583"), 1_000_000)) == "2553583000"
    assert money(Decimal("0.123456"), 1_000_000) == Decimal(123456)
    with pytest.raises(CellError, match="cent"):
        money(Decimal("0.000000001"), 1_000_000)
