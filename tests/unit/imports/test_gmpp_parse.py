"""The GMPP annual files: six layouts, encodings, money, exemptions and ratings."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from importers.errors import ImportRejected
from importers.gmpp import parse_gmpp
from tests.unit.imports.conftest import GMPP

COUNTS = {
    "2019-20": 125, "2020-21": 184, "2021-22": 235, "2022-23": 244, "2023-24": 227, "2024-25": 213,
}  # fmt: skip


@pytest.mark.parametrize("ref", sorted(COUNTS))
def test_every_annual_file_parses(ref: str) -> None:
    edition = parse_gmpp(GMPP / f"gmpp_{ref.replace('-', '_')}.csv")
    assert (edition.ref, edition.source, edition.currency) == (ref, f"gmpp:{ref}", "GBP")
    assert edition.date == date(int(ref[:4]) + 1, 3, 31)
    assert len(edition.projects) == COUNTS[ref]


def test_2020_21_matches_the_annual_report() -> None:
    edition = parse_gmpp(GMPP / "gmpp_2020_21.csv")  # Windows-1252, "£2,013.02"
    assert len(edition.projects) == 184
    assert (edition.total_cost() / Decimal(10**9)).quantize(Decimal("0.1")) == Decimal("542.0")
    mpa = edition.projects["MOD_0106_1617-Q1"]
    assert mpa.rating == "Amber/Red"  # published as "Amber/red"
    assert mpa.cost == Decimal(2_013_020_000)
    assert (mpa.details["start_date"], mpa.planned_end) == (date(2014, 7, 8), date(2024, 4, 1))
    assert mpa.details["ministry_code"] == "MOD"


def test_the_transposed_2019_20_file() -> None:
    edition = parse_gmpp(GMPP / "gmpp_2019_20.csv")
    assert edition.record == "column"
    project = edition.projects["BEIS_0004_1920-Q2"]
    assert project.name == "Future Shared Services Programme"
    assert project.cost == Decimal(423_920_000)
    assert project.planned_end == date(2023, 5, 31)
    assert project.rating == "Amber"
    assert project.details["functional_zone"] == "ICT"


def test_2024_25_upper_case_ratings_and_ranges() -> None:
    edition = parse_gmpp(GMPP / "gmpp_2024_25.csv")
    ratings = {p.rating for p in edition.projects.values()}
    assert ratings == {"Green", "Amber", "Red", None}
    assert edition.projects["CO_0133_2223-Q1"].cost == Decimal(558_000_000)


def test_exemptions_withhold_the_cost() -> None:
    edition = parse_gmpp(GMPP / "gmpp_2021_22.csv")
    withheld = [p for p in edition.projects.values() if p.withheld]
    assert withheld and all(p.cost is None for p in withheld)
    assert all("xempt" in (p.withheld_reason or "") for p in withheld)


def test_an_end_before_the_start_is_reported_not_imported() -> None:
    edition = parse_gmpp(GMPP / "gmpp_2022_23.csv")
    assert edition.projects["MOD_0137_2122-Q1"].planned_end is None
    assert any("MOD_0137_2122-Q1 ends (2023-01-20) before" in w for w in edition.warnings)


HEADER = [
    "GMPP ID Number", "Project Name", "Department", "Annual Report Category",
    "Description / Aims", "IPA Delivery Confidence Assessment \n(five-point scale)",
    "SRO Delivery Confidence Assessment \n(three-point scale)",
    "Departmental commentary on actions planned or taken on the IPA RAG rating.",
    "Project - Start Date \n(Latest Approved Start Date)",
    "Project - End Date \n(Latest Approved End Date)",
    "Financial Year Variance (%)",
    "TOTAL Baseline Whole Life Costs (£m) (including Non-Government Costs)",
]  # fmt: skip
ROW = [
    "DFT_0001_1920-Q1", "Road", "DfT", "Infrastructure and Construction", "A road",
    "Amber/Green", "", "Improving.", "01/04/2019", "31/03/2024", "0%", "£1,234.56",
]  # fmt: skip


WLC = "TOTAL Baseline Whole Life Costs (£m) (including Non-Government Costs)"


def gmpp_text(*rows: list[str], header: list[str] = HEADER) -> str:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue()


def with_cell(column: str, value: str, row: list[str] = ROW) -> list[str]:
    copy = list(row)
    copy[[h.split(" \n")[0] for h in HEADER].index(column)] = value
    return copy


def test_money_percent_and_windows_1252(write: Callable[..., Path]) -> None:
    edition = parse_gmpp(write("gmpp_2020_21.csv", gmpp_text(ROW), encoding="cp1252"))
    road = edition.projects["DFT_0001_1920-Q1"]
    assert road.cost == Decimal(1_234_560_000)
    assert road.rating == "Amber/Green"
    assert road.narratives["status"] == "IPA delivery confidence Amber/Green: Improving."


@pytest.mark.parametrize(
    ("cell", "cost", "withheld"),
    [
        ("Exempt under Section 43 of the Freedom of Information Act 2000", None, True),
        ("The project is not in a position to provide this information", None, False),
        ("NA", None, False),
        ("£0.00", None, False),
        ("Low: 304.64, Mid: 331.47, High: 331.47", Decimal(331_470_000), False),
        ("12,743", Decimal(12_743_000_000), False),
    ],
)
def test_whole_life_cost_cells(
    write: Callable[..., Path], cell: str, cost: Decimal | None, withheld: bool
) -> None:
    row = with_cell(WLC, cell)
    edition = parse_gmpp(write("gmpp_2024_25.csv", gmpp_text(row)))
    project = edition.projects["DFT_0001_1920-Q1"]
    assert (project.cost, project.withheld) == (cost, withheld)


def test_the_sro_rating_when_the_ipa_gives_none_and_red_gets_a_narrative(
    write: Callable[..., Path],
) -> None:
    row = with_cell(
        "SRO Delivery Confidence Assessment",
        "RED",
        with_cell("IPA Delivery Confidence Assessment", "NA"),
    )
    row = with_cell(
        "Departmental commentary on actions planned or taken on the IPA RAG rating.", "", row
    )
    project = parse_gmpp(write("gmpp_2021_22.csv", gmpp_text(row))).projects["DFT_0001_1920-Q1"]
    assert project.rating == "Red"
    assert (
        project.narratives["status"] == "SRO delivery confidence Red; no commentary was published"
    )


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("IPA Delivery Confidence Assessment", "Purple", "is not a delivery confidence rating"),
        ("Project - End Date", "31-03-2024", "is not a date"),
        (WLC, "£1,2x", "not a number"),
        (WLC, "Low: 3, High: 4", "range without a Mid"),
    ],
)  # fmt: skip
def test_bad_cells_are_refused(
    write: Callable[..., Path], column: str, value: str, reason: str
) -> None:
    other = with_cell("GMPP ID Number", "DFT_0002_1920-Q1")
    with pytest.raises(
        ImportRejected, match=f"gmpp_2020_21.csv, row 3, column '{column[:20]}.*{reason}"
    ):
        parse_gmpp(write("gmpp_2020_21.csv", gmpp_text(other, with_cell(column, value))))


def test_a_transposed_file(write: Callable[..., Path]) -> None:
    other = with_cell("GMPP ID Number", "DFT_0002_1920-Q1")
    columns = list(zip(HEADER, ROW, other, strict=True))
    edition = parse_gmpp(
        write(
            "gmpp_2019_20.csv", gmpp_text(*[list(c) for c in columns[1:]], header=list(columns[0]))
        )
    )
    assert sorted(edition.projects) == ["DFT_0001_1920-Q1", "DFT_0002_1920-Q1"]
    assert edition.projects["DFT_0002_1920-Q1"].row == 3  # its column in the file


def test_the_year_comes_from_the_option_or_the_file_name(write: Callable[..., Path]) -> None:
    path = write("projects.csv", gmpp_text(ROW))
    with pytest.raises(ImportRejected, match="names no financial year: give --year"):
        parse_gmpp(path)
    edition = parse_gmpp(path, year="2022-23", snapshot=date(2022, 9, 30))
    assert (edition.ref, edition.date) == ("2022-23", date(2022, 9, 30))
    with pytest.raises(ImportRejected, match="'2022-24' is not a financial year"):
        parse_gmpp(path, year="2022-24")


def test_a_missing_whole_life_cost_column_is_named(write: Callable[..., Path]) -> None:
    path = write("gmpp_2020_21.csv", gmpp_text(ROW[:-1], header=HEADER[:-1]))
    with pytest.raises(
        ImportRejected, match=r"GMPP annual layout lacks 'TOTAL Baseline Whole Life Costs \(£m\)'"
    ):
        parse_gmpp(path)
