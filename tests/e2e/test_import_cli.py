"""`panorama import` as an operator runs it: the console script on a SQLite DATABASE_URL.

The click group runs through CliRunner with the environment a shell would give it, so the
Services come from `DATABASE_URL` (the LazyServices of `service.cli.main`), the catch-up of
the read model runs in-process after the import (no REDIS_URL), and what was imported is
then read through the HTTP API of an app built on the same database.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from domain.ministry import load_seed
from service.app import create_app
from service.bootstrap import bootstrap
from service.cli import main
from service.config import Settings
from tests.conftest import SHARED_DATA

DERIVED = SHARED_DATA / "panorama" / "derived"
LONG = DERIVED / "panorama_all_editions_long.csv"
GMPP_2020_21 = SHARED_DATA / "gmpp" / "raw" / "gmpp_2020_21.csv"
MEUR = Decimal(1_000_000)
# What the first start records: the currency, the ministries reference and its aliases.
SEEDED = 2 + len(load_seed()) + sum(len(m.aliases) for m in load_seed())
EDITIONS = (
    "panorama:2016-11, panorama:2017-02, panorama:2017-06, panorama:2017-11, "
    "panorama:2018-03, panorama:2018-07, panorama:2018-11, panorama:2019-03"
)


@dataclass
class Operator:
    """Runs `panorama ...` against one database, and reads it back over HTTP."""

    database_url: str

    currency: str = "EUR"

    def run(self, *args: str) -> Result:
        env = {"DATABASE_URL": self.database_url, "DATABASE_SCHEMA": None, "REDIS_URL": None}
        env["PORTFOLIO_CURRENCY"] = self.currency
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        return result

    def imports(self, *args: str) -> Result:
        return self.run("import", *args)

    def status(self) -> dict[str, Any]:
        """The `panorama projections status --json` row of the project-states projection."""
        result = self.run("projections", "status", "--json")
        assert result.exit_code == 0, result.output
        rows = {row["name"]: row for row in json.loads(result.stdout)}
        row: dict[str, Any] = rows["project_states"]
        return row

    def get(self, path: str) -> dict[str, Any]:
        services = bootstrap(Settings(database_url=self.database_url, currency=self.currency))
        try:
            app = create_app(services)
            response = app.test_client().get(path)
        finally:
            services.close()
        assert response.status_code == 200, response.get_data(as_text=True)
        body: dict[str, Any] = response.get_json()
        return body


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[Operator]:
    yield Operator(f"sqlite:///{tmp_path / 'panorama.sqlite3'}")


def _lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


def test_importing_the_panorama_history_prints_what_was_recorded(operator: Operator) -> None:
    result = operator.imports("panorama", "--no-progress", str(LONG))
    assert result.exit_code == 0, result.output
    lines = _lines(result)
    assert lines[0] == f"editions imported: {EDITIONS}"
    assert lines[1] == "editions already imported (nothing to record): none"
    assert lines[2] == "projects registered: 108, changed: 314, left: 62, rejoined: 2"
    assert lines[3].startswith("events recorded: 764 in ")
    assert lines[4] == f"last notification position: {764 + SEEDED}"
    assert result.stderr == ""  # no progress bar asked for, nothing refused


def test_the_read_model_is_caught_up_when_the_import_command_returns(operator: Operator) -> None:
    operator.imports("panorama", "--no-progress", str(LONG))
    status = operator.status()
    assert (status["position"], status["head"], status["lag"]) == (764 + SEEDED, 764 + SEEDED, 0)
    assert status["last_error"] is None
    summary = operator.get("/api/portfolio/summary?as_of=2016-11-03")
    assert (summary["projects"], summary["costed_projects"]) == (57, 49)
    assert Decimal(summary["total_cost"]) == Decimal("2292.9") * MEUR
    assert summary["position"] == 764 + SEEDED
    latest = operator.get("/api/portfolio/summary?as_of=2019-03-01")
    assert (latest["projects"], latest["costed_projects"]) == (48, 44)


def test_importing_the_same_file_again_records_nothing(operator: Operator) -> None:
    first = operator.imports("panorama", "--no-progress", str(LONG))
    assert first.exit_code == 0, first.output
    again = operator.imports("panorama", "--no-progress", str(LONG))
    assert again.exit_code == 0, again.output
    assert _lines(again)[:3] == [
        "editions imported: none",
        f"editions already imported (nothing to record): {EDITIONS}",
        "projects registered: 0, changed: 0, left: 0, rejoined: 0",
    ]
    assert _lines(again)[3].startswith("events recorded: 0 in ")
    assert "last notification position" not in again.stdout
    assert operator.status()["head"] == 764 + SEEDED


def test_importing_a_gmpp_year_prints_what_was_recorded(operator: Operator) -> None:
    operator.currency = "GBP"  # the GMPP's pounds go into a portfolio in pounds
    result = operator.imports("gmpp", "--no-progress", str(GMPP_2020_21))
    assert result.exit_code == 0, result.output
    lines = _lines(result)
    assert lines[:3] == [
        "editions imported: gmpp:2020-21",
        "editions already imported (nothing to record): none",
        "projects registered: 184, changed: 0, left: 0, rejoined: 0",
    ]
    assert lines[3].startswith("events recorded: 378 in ")
    summary = operator.get("/api/portfolio/summary?as_of=2021-03-31")
    assert summary["projects"] == 184
    assert summary["total_cost"] == "541951370000.00"  # pounds: £542.0bn
    again = operator.imports("gmpp", "--no-progress", str(GMPP_2020_21))
    assert again.exit_code == 0, again.output
    assert _lines(again)[0] == "editions imported: none"
    assert _lines(again)[3].startswith("events recorded: 0 in ")
    assert operator.status()["head"] == 378 + SEEDED


def _with_bad_cost(folder: Path, ref: str, record: int, value: str) -> tuple[Path, str]:
    """A copy of a derived edition whose cost on one record (header = 1) is `value`."""
    source = DERIVED / f"panorama_{ref}.csv"
    rows = list(csv.reader(io.StringIO(source.read_text(encoding="utf-8"))))
    column = rows[0].index("cout_estime_meur")
    name = rows[record - 1][rows[0].index("projet")]
    rows[record - 1][column] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path = folder / source.name
    path.write_text(out.getvalue(), encoding="utf-8")
    return path, name


def test_a_file_with_a_bad_cell_is_refused_naming_it_and_records_nothing(
    operator: Operator, tmp_path: Path
) -> None:
    operator.imports("panorama", "--no-progress", str(DERIVED / "panorama_2016-11.csv"))
    before = operator.status()
    assert before["head"] > 0
    bad, project = _with_bad_cost(tmp_path, "2017-02", record=6, value="12,3,4")
    good = DERIVED / "panorama_2017-06.csv"

    # The good file is read first: refusing the second one must record neither.
    result = operator.imports("panorama", "--no-progress", str(good), str(bad))

    assert result.exit_code == 1
    assert result.stdout == ""  # no summary: nothing was done
    assert result.stderr == (
        "Error: import refused, nothing recorded: panorama_2017-02.csv, row 6, "
        "column 'cout_estime_meur': '12,3,4' is not a number\n"
    )
    assert project == "FRANCECONNECT PHASE II"
    assert operator.status() == before  # the head did not move, not even for the good file
    june = operator.get("/api/portfolio/summary?as_of=2017-06-01")
    assert (june["projects"], june["costed_projects"]) == (57, 49)  # still November 2016's


def test_a_missing_file_is_a_usage_error(operator: Operator, tmp_path: Path) -> None:
    result = operator.imports("panorama", str(tmp_path / "absent.csv"))
    assert result.exit_code == 2
    assert "absent.csv" in result.stderr and "does not exist" in result.stderr
    status = operator.run("projections", "status")  # nothing recorded: not even a database
    assert status.exit_code == 1 and "no Panorama database" in status.stderr


def test_a_file_with_finer_decimals_imports_with_a_warning_and_strict_refuses_it(
    operator: Operator, tmp_path: Path
) -> None:
    source = DERIVED / "panorama_2016-11.csv"
    rows = list(csv.reader(io.StringIO(source.read_text(encoding="utf-8"))))
    column = rows[0].index("cout_estime_meur")
    rows[1][column] = "7.0000000001234"  # 13 decimals of M€, as a consolidated file had them
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    variant = tmp_path / source.name
    variant.write_text(out.getvalue(), encoding="utf-8")

    strict = operator.imports("panorama", "--no-progress", "--strict", str(variant))
    assert strict.exit_code == 1
    assert strict.stderr == (
        "Error: import refused, nothing recorded: panorama_2016-11.csv, row 2, column "
        "'cout_estime_meur': '7.0000000001234' has more precision than a cent once converted "
        "(amount)\n"
    )
    status = operator.run("projections", "status")  # nothing recorded: not even a database
    assert status.exit_code == 1 and "no Panorama database" in status.stderr

    result = operator.imports("panorama", "--no-progress", str(variant))
    assert result.exit_code == 0, result.output
    assert (
        "warning: panorama_2016-11.csv: 1 amount(s) had more precision than a cent and were "
        "rounded half-even to the cent (largest adjustment: 0.0001234 EUR, row 2, column "
        "'cout_estime_meur')"
    ) in _lines(result)
    summary = operator.get("/api/portfolio/summary?as_of=2016-11-03")
    assert Decimal(summary["total_cost"]) == Decimal("2292.9") * MEUR
