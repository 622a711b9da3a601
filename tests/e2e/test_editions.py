"""Editions as first-class reference data: `panorama import`, then `/api/editions` over HTTP."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

from tests.e2e.test_import_cli import DERIVED, GMPP_2020_21, LONG, SEEDED, Operator, _lines
from tests.e2e.test_import_cli import operator as operator  # noqa: F401 (the fixture)

SUMMARY = DERIVED / "editions_summary.csv"
REFS = ["2016-11", "2017-02", "2017-06", "2017-11", "2018-03", "2018-07", "2018-11", "2019-03"]


def _published() -> dict[str, dict[str, str]]:
    with SUMMARY.open(encoding="utf-8") as f:
        return {row["edition_ref"]: row for row in csv.DictReader(f)}


def test_the_editions_list_the_imported_file_its_hash_position_and_headline(
    operator: Operator,
) -> None:
    result = operator.imports("panorama", "--no-progress", str(LONG))
    assert result.exit_code == 0, result.output
    body = operator.get("/api/editions")
    items = body["items"]
    assert [e["ref"] for e in items] == REFS
    sha256 = hashlib.sha256(LONG.read_bytes()).hexdigest()
    published = _published()
    for item in items:
        assert (item["series"], item["file"], item["file_sha256"]) == (
            "panorama",
            LONG.name,
            sha256,
        )
        assert (item["currency"], item["unit"], item["price_base"]) == ("EUR", "M€", None)
        row = published[item["ref"]]
        assert item["headline"]["projects"] == int(row["projects"])
        assert item["headline"]["interministerial_projects"] == int(
            row["interministerial_projects"]
        )
        assert item["headline"]["mean_duration_years"] == f"{float(row['mean_duration_years']):.2f}"
    # Recorded after the projects' events, in the import's one save: the last is its position.
    assert [e["position"] for e in items] == list(range(757 + SEEDED, 765 + SEEDED))
    assert _lines(result)[4] == f"last notification position: {764 + SEEDED}"
    assert body["position"] == 764 + SEEDED


def test_importing_the_same_file_again_records_no_edition(operator: Operator) -> None:
    operator.imports("panorama", "--no-progress", str(LONG))
    before = operator.get("/api/editions")
    again = operator.imports("panorama", "--no-progress", str(LONG))
    assert again.exit_code == 0, again.output
    assert _lines(again)[3].startswith("events recorded: 0 in ")
    assert operator.get("/api/editions") == before


def test_another_file_for_an_imported_edition_is_refused_unless_it_changes_nothing(
    operator: Operator, tmp_path: Path
) -> None:
    operator.imports("panorama", "--no-progress", str(LONG))
    same = operator.imports("panorama", "--no-progress", str(DERIVED / "panorama_2019-03.csv"))
    assert same.exit_code == 0, same.output
    assert (
        "warning: panorama_2019-03.csv: gives edition panorama:2019-03 as "
        "panorama_all_editions_long.csv (already imported) does: nothing recorded"
    ) in _lines(same)
    changed = tmp_path / "panorama_2019-03.csv"
    text = (DERIVED / "panorama_2019-03.csv").read_text(encoding="utf-8")
    changed.write_text(text.replace(",SIRHEN,", ",SIRHEN NG,", 1), encoding="utf-8")
    refused = operator.imports("panorama", "--no-progress", str(changed))
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "Error: import refused, nothing recorded: panorama_2019-03.csv: gives edition "
        "panorama:2019-03 (2019-03-01), already imported from panorama_all_editions_long.csv "
        "(sha256 "
    )
    assert operator.status()["head"] == 764 + SEEDED


def test_an_edition_shows_its_published_headline_next_to_the_computed_summary(
    operator: Operator,
) -> None:
    operator.imports("panorama", "--no-progress", str(LONG))
    detail = operator.get("/api/editions/2019-03")
    summary = operator.get("/api/portfolio/summary?as_of=2019-03-01")
    figures = {c["figure"]: c for c in detail["comparison"]}
    # March 2019 published 46 projects; its table lists 48, two of them with figures withheld.
    assert figures["projects"] == {
        "figure": "projects",
        "published": 46,
        "computed": summary["projects"],
        "difference": summary["projects"] - 46,
    }
    assert figures["total_cost"]["published"] == "1640000000.00"
    assert figures["total_cost"]["computed"] == summary["total_cost"]
    assert detail["as_of"] == "2019-03-01" and detail["file"] == LONG.name


def test_headline_figures_given_later_are_recorded_once(operator: Operator, tmp_path: Path) -> None:
    copy = tmp_path / LONG.name  # no editions_summary.csv beside it
    shutil.copy(LONG, copy)
    operator.imports("panorama", "--no-progress", str(copy))
    assert all(e["headline"] is None for e in operator.get("/api/editions")["items"])
    given = operator.imports("panorama", "--no-progress", "--headline", str(SUMMARY), str(copy))
    assert given.exit_code == 0, given.output
    assert _lines(given)[3].startswith("events recorded: 8 in ")
    items = operator.get("/api/editions")["items"]
    assert [e["headline"]["projects"] for e in items] == [57, 61, 61, 61, 61, 56, 54, 46]
    again = operator.imports("panorama", "--no-progress", "--headline", str(SUMMARY), str(copy))
    assert _lines(again)[3].startswith("events recorded: 0 in ")


def test_a_gmpp_edition_is_recorded_in_pounds(operator: Operator) -> None:
    operator.currency = "GBP"  # the GMPP's pounds go into a portfolio in pounds
    operator.imports("gmpp", "--no-progress", str(GMPP_2020_21))
    (item,) = operator.get("/api/editions")["items"]
    assert (item["ref"], item["currency"], item["unit"], item["headline"]) == (
        "2020-21",
        "GBP",
        "£m",
        None,
    )
    assert item["file_sha256"] == hashlib.sha256(GMPP_2020_21.read_bytes()).hexdigest()
