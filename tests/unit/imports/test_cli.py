"""The `import` click group: summary, exit codes, after_commit once, dry runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from click.testing import CliRunner

from domain.application import Portfolio
from service.cli_import import import_group
from tests.unit.imports.conftest import GMPP, LONG, make_portfolio
from tests.unit.imports.helpers import event_count


def services() -> tuple[SimpleNamespace, list[int]]:
    commits: list[int] = []
    return SimpleNamespace(portfolio=make_portfolio(), after_commit=commits.append), commits


def invoke(obj: object, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(import_group, list(args), obj={"services": obj})
    return result.exit_code, result.output


def test_import_panorama_prints_a_summary_and_commits_once() -> None:
    fake, commits = services()
    code, output = invoke(fake, "panorama", "--no-progress", str(LONG))
    assert code == 0, output
    assert "projects registered: 108, changed: 314, left: 62, rejoined: 2" in output
    portfolio: Portfolio = fake.portfolio
    assert commits == [event_count(portfolio)]
    code, output = invoke(fake, "panorama", "--no-progress", str(LONG))
    assert code == 0 and "events recorded: 0" in output
    assert len(commits) == 1


def test_a_dry_run_records_nothing() -> None:
    fake, commits = services()
    code, output = invoke(
        fake, "gmpp", "--dry-run", "--no-progress", str(GMPP / "gmpp_2020_21.csv")
    )
    assert code == 0, output
    assert "events that would be recorded: " in output and "(dry run: nothing recorded)" in output
    assert (commits, event_count(fake.portfolio)) == ([], 0)


def test_a_refusal_exits_non_zero_with_the_reason(write: Callable[..., Path]) -> None:
    fake, commits = services()
    bad = write("bad.csv", "edition,projet\n2017-02,X\n")
    code, output = invoke(fake, "panorama", str(bad))
    assert code == 1
    assert "import refused, nothing recorded: bad.csv: has an unknown layout" in output
    assert commits == []


def test_gmpp_with_an_aliases_file_and_a_year(write: Callable[..., Path]) -> None:
    fake, commits = services()
    path = write("annual.csv", (GMPP / "gmpp_2021_22.csv").read_bytes())
    code, output = invoke(fake, "gmpp", "--year", "2021-22", "--no-progress", str(path))
    assert code == 0, output
    assert "editions imported: gmpp:2021-22" in output
    aliases = write("aliases.csv", "alias,canonical\nPNIJ,PNIJ NG (ANTENJ)\n")
    code, output = invoke(fake, "panorama", "--aliases", str(aliases), "--no-progress", str(LONG))
    assert code == 0, output
    assert len(commits) == 2


def test_services_may_be_built_lazily() -> None:
    fake, commits = services()
    code, _ = invoke(lambda: fake, "gmpp", "--no-progress", str(GMPP / "gmpp_2019_20.csv"))
    assert code == 0 and len(commits) == 1
