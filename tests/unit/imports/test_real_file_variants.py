"""Real files as publishers vary them: finer decimals, renamed id columns, blank ids, units.

Each variant is generated from a real file in tmp_path; it imports with the right warning and
exactly the figures of the original, and `strict=True` refuses it as before.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from domain.application import Portfolio
from importers import ImportRejected, import_editions, parse_gmpp, parse_panorama, project_id
from importers.model import Edition
from tests.unit.imports.conftest import GMPP, LONG, make_portfolio

TINY = Decimal("0.0000000001234")  # M€: `7` becomes `7.0000000001234` (13 decimals)


def rewrite(source: Path, folder: Path, change: Callable[[list[list[str]]], None]) -> Path:
    """A copy of a UTF-8 CSV file with its records changed by `change` (header included)."""
    rows = list(csv.reader(io.StringIO(source.read_text(encoding="utf-8-sig"))))
    change(rows)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path = folder / source.name
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def costs(editions: list[Edition]) -> dict[tuple[str, str], Decimal | None]:
    return {(e.ref, key): p.cost for e in editions for key, p in e.projects.items()}


def with_finer_costs(rows: list[list[str]]) -> None:
    column = rows[0].index("cout_estime_meur")
    for row in rows[1:]:
        if row[column].strip():
            row[column] = f"{Decimal(row[column]) + TINY:f}"


def test_amounts_finer_than_a_cent_are_rounded_half_even_with_one_warning(tmp_path: Path) -> None:
    variant = rewrite(LONG, tmp_path, with_finer_costs)
    original, editions = parse_panorama(LONG), parse_panorama(variant)
    assert costs(editions) == costs(original)
    costed = sum(e.count_costed() for e in original)
    warnings = [w for e in editions for w in e.warnings]
    assert warnings == [
        f"panorama_all_editions_long.csv: {costed} amount(s) had more precision than a cent and "
        "were rounded half-even to the cent (largest adjustment: 0.0001234 EUR, row 2, column "
        "'cout_estime_meur')"
    ]
    with pytest.raises(ImportRejected) as refused:
        parse_panorama(variant, strict=True)
    assert str(refused.value) == (
        "panorama_all_editions_long.csv, row 2, column 'cout_estime_meur': "
        "'7.0000000001234' has more precision than a cent once converted (amount)"
    )


def test_half_a_cent_rounds_to_the_even_cent(write: Callable[..., Path]) -> None:
    header = LONG.read_text(encoding="utf-8-sig").splitlines()[0]
    first = next(csv.reader([LONG.read_text(encoding="utf-8-sig").splitlines()[1]]))
    column = header.split(",").index("cout_estime_meur")
    rows = []
    for name, cost in (("A", "1.000000005"), ("B", "1.000000015")):  # M€: half a cent over
        row = list(first)
        row[header.split(",").index("projet")] = name
        row[column] = cost
        rows.append(row)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header.split(","), *rows])
    (edition,) = parse_panorama(write("p.csv", out.getvalue()))
    assert [p.cost for p in edition.projects.values()] == [
        Decimal("1000000.00"),
        Decimal("1000000.02"),
    ]


def test_a_renamed_id_column_is_read_through_its_synonym(tmp_path: Path) -> None:
    source = GMPP / "gmpp_2021_22.csv"

    def rename(rows: list[list[str]]) -> None:
        rows[0][rows[0].index("GMPP ID Number")] = "Project ID"

    variant = rewrite(source, tmp_path, rename)
    edition, original = parse_gmpp(variant), parse_gmpp(source)
    assert costs([edition]) == costs([original])
    assert edition.warnings[0] == (
        "gmpp_2021_22.csv: column 'Project ID' is read as 'GMPP ID Number'"
    )
    with pytest.raises(ImportRejected, match="has an unknown layout: .* lacks 'GMPP ID Number'"):
        parse_gmpp(variant, strict=True)


def test_a_price_base_in_the_unit_header_is_kept_as_metadata(tmp_path: Path) -> None:
    source = GMPP / "gmpp_2024_25.csv"
    header = "Whole Life Cost (£m, Presented in 2024/25 Real Prices)"

    def restate(rows: list[list[str]]) -> None:
        rows[0][rows[0].index("Whole Life Cost (£m)")] = header

    variant = rewrite(source, tmp_path, restate)
    edition, original = parse_gmpp(variant), parse_gmpp(source)
    assert costs([edition]) == costs([original])
    assert (edition.currency, edition.unit, edition.price_base) == (
        "GBP",
        "£m",
        "real prices of 2024/25",
    )
    assert (original.unit, original.price_base) == ("£m", None)
    assert (
        f"gmpp_2024_25.csv: column {header!r}: unit '£m, presented in 2024/25 real prices' "
        "read as GBP x 1000000, price base: real prices of 2024/25" in edition.warnings
    )
    with pytest.raises(ImportRejected, match="'£m, presented in 2024/25 real prices' is a unit"):
        parse_gmpp(variant, strict=True)


def test_a_unit_header_that_cannot_be_read_is_refused_naming_it(tmp_path: Path) -> None:
    source = GMPP / "gmpp_2024_25.csv"

    def restate(rows: list[list[str]]) -> None:
        rows[0][rows[0].index("Whole Life Cost (£m)")] = "Whole Life Cost (£m, per annum)"

    with pytest.raises(ImportRejected) as refused:
        parse_gmpp(rewrite(source, tmp_path, restate))
    assert str(refused.value) == (
        "gmpp_2024_25.csv, column 'Whole Life Cost (£m, per annum)': '£m, per annum' is a unit "
        "that is not understood (accepted: £m, £bn, £k, £): 'per annum' is neither a price "
        "base nor a note"
    )


def _blank_id(source: Path, folder: Path, key: str) -> tuple[Path, str]:
    found: list[str] = []

    def blank(rows: list[list[str]]) -> None:
        column = rows[0].index("GMPP ID Number")
        row = next(r for r in rows[1:] if r[column] == key)
        row[column] = ""
        found.append(row[rows[0].index("Project Name")])

    return rewrite(source, folder, blank), found[0]


def _import(portfolio: Portfolio, *files: Path, strict: bool = False) -> list[str]:
    warnings = []
    for path in files:
        warnings += import_editions(portfolio, [parse_gmpp(path, strict=strict)]).warnings
    return warnings


def test_a_row_without_an_id_is_matched_by_its_name(tmp_path: Path) -> None:
    earlier, later = GMPP / "gmpp_2020_21.csv", GMPP / "gmpp_2021_22.csv"
    key = "MOJ_0050_2021-Q1"  # listed in both years under the same name
    variant, name = _blank_id(later, tmp_path, key)

    expected, portfolio = make_portfolio(), make_portfolio()
    _import(expected, earlier, later)
    warnings = _import(portfolio, earlier, variant)

    assert (
        f"gmpp_2021_22.csv, row 3: {name!r} has no id (column 'GMPP ID Number'): matched by its "
        "name to the project of that name"
    ) in warnings
    pid = project_id("gmpp", key)
    assert [type(e).__name__ for e in portfolio.project_events(pid)] == [
        type(e).__name__ for e in expected.project_events(pid)
    ]
    assert portfolio.get_project(pid).current_cost == expected.get_project(pid).current_cost
    assert portfolio.get_project(pid).in_portfolio  # not left and registered again
    with pytest.raises(ImportRejected, match="row 3, column 'GMPP ID Number': is empty"):
        parse_gmpp(variant, strict=True)


def test_a_row_without_an_id_nor_a_known_name_is_registered_under_its_name(
    tmp_path: Path,
) -> None:
    variant, name = _blank_id(GMPP / "gmpp_2021_22.csv", tmp_path, "MOJ_0050_2021-Q1")
    portfolio = make_portfolio()
    warnings = _import(portfolio, variant)
    assert (
        f"gmpp_2021_22.csv, row 3: {name!r} has no id (column 'GMPP ID Number') and no project "
        "has its name: registered under its name"
    ) in warnings
    assert portfolio.get_project(project_id("gmpp", f"name:{_key(name)}")).name == name


def _key(name: str) -> str:
    from importers.matching import normalise_name

    return normalise_name(name)
