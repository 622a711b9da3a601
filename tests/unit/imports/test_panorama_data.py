"""The parsed panorama editions reproduce the published figures, whichever layout is read."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal

import pytest

from importers.model import Edition
from importers.panorama import parse_panorama
from tests.unit.imports.conftest import DERIVED, LONG, RAW

with (DERIVED / "editions_summary.csv").open(encoding="utf-8") as f:
    SUMMARY = [r for r in csv.DictReader(f) if r["project_table_rows"]]
EXPECTED = {
    r["edition_ref"]: (
        int(r["project_table_rows"]),
        int(r["project_table_costed_rows"]),
        Decimal(r["project_table_cost_sum_meur"]),
    )
    for r in SUMMARY
}
MEUR = Decimal(1_000_000)


def figures(edition: Edition) -> tuple[int, int, Decimal]:
    return len(edition.projects), edition.count_costed(), edition.total_cost() / MEUR


def published(edition: Edition) -> tuple[int, int, Decimal]:
    """The figures as the summary gives them (its sums are rounded to 0.01 M€ at most)."""
    rows, costed, total = figures(edition)
    return rows, costed, total.quantize(EXPECTED[edition.ref][2])


def test_the_summary_lists_eight_editions() -> None:
    assert sorted(EXPECTED) == [
        "2016-11", "2017-02", "2017-06", "2017-11", "2018-03", "2018-07", "2018-11", "2019-03",
    ]  # fmt: skip
    assert EXPECTED["2016-11"] == (57, 49, Decimal("2292.9"))
    assert EXPECTED["2017-02"] == (61, 52, Decimal("2505.2"))


@pytest.mark.parametrize("ref", sorted(EXPECTED))
def test_each_derived_file_gives_the_published_figures(ref: str) -> None:
    [edition] = parse_panorama(DERIVED / f"panorama_{ref}.csv")
    assert edition.ref == ref
    assert published(edition) == EXPECTED[ref]


def test_the_long_file_gives_every_edition_with_its_figures() -> None:
    editions = parse_panorama(LONG)
    assert {e.ref: published(e) for e in editions} == EXPECTED
    assert figures(editions[5])[2] == Decimal("2553.583")  # 2018-07, exact
    assert [e.date for e in editions] == [
        date(2016, 11, 3), date(2017, 2, 1), date(2017, 6, 1), date(2017, 11, 1),
        date(2018, 2, 28), date(2018, 7, 1), date(2018, 11, 1), date(2019, 3, 1),
    ]  # fmt: skip
    assert {e.source for e in editions} == {f"panorama:{ref}" for ref in EXPECTED}


def test_march_2018_costs_in_cadrage() -> None:
    [edition] = parse_panorama(DERIVED / "panorama_2018-03.csv")
    in_cadrage = [p.cost for p in edition.projects.values() if p.phase == "Cadrage" and p.cost]
    assert sum(in_cadrage, Decimal(0)) / MEUR == Decimal("114.92")


def test_march_2019_withholds_two_projects() -> None:
    [edition] = parse_panorama(DERIVED / "panorama_2019-03.csv")
    withheld = sorted(p.name for p in edition.projects.values() if p.withheld)
    assert withheld == ["SI SAMU", "SIRHEN"]
    assert all(p.cost is None and p.phase is None for p in edition.projects.values() if p.withheld)


NOV_2016 = [
    RAW / "DISIC-panorama/raw-data/panorama_projets_si.csv",
    RAW / "pachevalier-tricky/inst/extdata/DINSIC-Panorama_des_grands_projets_SI_20161116.xlsx",
]


@pytest.mark.parametrize("path", NOV_2016, ids=lambda p: p.suffix)
def test_the_raw_november_2016_files(path: object) -> None:
    [edition] = parse_panorama(path)  # type: ignore[arg-type]
    assert (edition.ref, edition.date) == ("2016-11", date(2016, 11, 3))
    assert figures(edition) == (57, 49, Decimal("2292.9"))
    assert sum(p.details["interministerial"] for p in edition.projects.values()) == 18
    years = [
        (p.planned_end - p.details["start_date"]).days / 365
        for p in edition.projects.values()
        if p.planned_end is not None
    ]
    assert round(sum(years) / len(years), 2) == 6.22
    sirhen = edition.projects["sirhen"]
    assert sirhen.cost == Decimal(496_400_000)
    assert sirhen.details["ministry_code"] == "MENESR"


@pytest.mark.parametrize(
    "name",
    ["Panorama_des_grands_projets_SI_-_20170630.csv", "panorama_projets_si_20170629113508bis.csv"],
)
def test_the_raw_june_2017_files(name: str) -> None:
    [edition] = parse_panorama(RAW / "DISIC-panorama/raw-data" / name)
    assert (edition.ref, edition.date) == ("2017-06", date(2017, 6, 1))
    assert figures(edition) == (61, 53, Decimal("2561.1"))


def test_the_raw_march_2018_workbook() -> None:
    [edition] = parse_panorama(RAW / "DISIC-panorama/raw-data/export__commit-2ae0069.xlsx")
    assert (edition.ref, edition.date) == ("2018-03", date(2018, 2, 28))
    assert figures(edition) == (61, 60, Decimal("2826.28"))
    assert edition.projects["pnr"].cost == Decimal(53_020_000)
    assert edition.projects["pcstorm"].planned_end is not None  # duration given as text '6.75'
