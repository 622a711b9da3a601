"""docs/importing.md's table of what the API gives on each panorama edition is the API's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from importers import parse_panorama
from service.app import create_app
from service.bootstrap import bootstrap
from service.cli_import import run_import
from service.config import Settings
from tests.e2e.test_import_published_figures import LAYOUTS, TODAY

DOC = Path(__file__).resolve().parents[2] / "docs" / "importing.md"
ROW = re.compile(r"^\| (\d{4}-\d{2}-\d{2}) \| (.+) \|$")
MEUR = Decimal(1_000_000)


def documented() -> dict[str, list[str]]:
    """The table's rows: as_of -> projects, costed, total (M€), engaged (M€), inter., mean."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        found = ROW.match(line)
        if found:
            rows[found.group(1)] = [c.strip() for c in found.group(2).split(" | ")][:6]
    return rows


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    folder = tmp_path_factory.mktemp("doc")
    services = bootstrap(
        Settings(database_url=f"sqlite:///{folder / 'p.sqlite3'}"), today=lambda: TODAY
    )
    try:
        run_import(services, [e for p in LAYOUTS["long"] for e in parse_panorama(p)])
        yield create_app(services).test_client()
    finally:
        services.close()


def test_the_documented_figures_are_what_the_api_gives(client: FlaskClient) -> None:
    rows = documented()
    assert len(rows) == 8
    for as_of, (projects, costed, total, engaged, inter, mean) in rows.items():
        got = client.get(f"/api/portfolio/summary?as_of={as_of}").get_json()
        shown = [
            str(got["projects"]),
            str(got["costed_projects"]),
            f"{Decimal(got['total_cost']) / MEUR:,f}".rstrip("0").rstrip("."),
            f"{Decimal(got['total_cost_engaged']) / MEUR:,f}".rstrip("0").rstrip("."),
            str(got["interministerial_projects"]),
            got["mean_duration_years"],
        ]
        assert shown == [projects, costed, total, engaged, inter, mean], as_of
