"""After an import, the query API reproduces the figures the portfolios published.

Issue 4, section 5. Each store is imported once per module (per layout and per backend,
SQLite and PostgreSQL), then only read through the HTTP API (Flask's test client).
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from psycopg import sql

from importers import parse_gmpp, parse_panorama
from importers.errors import ImportRejected
from importers.matching import project_id
from importers.model import Edition
from service.app import create_app
from service.bootstrap import Services, bootstrap
from service.cli_import import run_import
from service.config import Settings
from tests.conftest import BACKENDS, SHARED_DATA
from tests.e2e.conftest import authorize, make_token

PANORAMA = SHARED_DATA / "panorama"
DERIVED = PANORAMA / "derived"
DISIC = PANORAMA / "raw" / "DISIC-panorama" / "raw-data"
GMPP = SHARED_DATA / "gmpp" / "raw"
TODAY = date(2025, 6, 30)  # after the last GMPP snapshot (2025-03-31)
MEUR = Decimal(1_000_000)
GBP_BN = Decimal(1_000_000_000)

# The panorama editions, in the two derived layouts (the same 459 rows): (a) the eight
# per-edition files given to one import, (b) the consolidated long file.
LAYOUTS: dict[str, list[Path]] = {
    "derived": sorted(DERIVED.glob("panorama_20??-??.csv")),
    "long": [DERIVED / "panorama_all_editions_long.csv"],
}
# (c) The raw official DISIC files: Nov 2016, June 2017 and March 2018.
RAW = [
    DISIC / "panorama_projets_si.csv",
    DISIC / "Panorama_des_grands_projets_SI_-_20170630.csv",
    DISIC / "export__commit-2ae0069.xlsx",
]


def _summary_rows() -> dict[str, dict[str, str]]:
    with (DERIVED / "editions_summary.csv").open(encoding="utf-8") as f:
        return {r["edition_ref"]: r for r in csv.DictReader(f) if r["project_table_rows"]}


SUMMARY = _summary_rows()
# What derived/editions_summary.csv says of each edition's project table:
# (project_table_rows, project_table_costed_rows, project_table_cost_sum_meur × 1e6 in euros).
PUBLISHED = {
    ref: (
        int(r["project_table_rows"]),
        int(r["project_table_costed_rows"]),
        Decimal(r["project_table_cost_sum_meur"]) * MEUR,
    )
    for ref, r in SUMMARY.items()
}
# The summary gives its sums to 0.01 M€; one table's exact sum has a third decimal.
EXACT_WHERE_ROUNDED = {"2018-07": Decimal("2553583000")}  # 2,553.583 M€ → "2553.58"
# What panorama/README.md states of the raw official files (the March 2018 workbook costs
# one more project than the dashboard's table: 60 costed rows, 2,826.28 M€).
RAW_README = {
    "2016-11": (57, 49, Decimal("2292.9") * MEUR),
    "2017-06": (61, 53, Decimal("2561.1") * MEUR),
    "2018-03": (61, 60, Decimal("2826.28") * MEUR),
}


@dataclass
class Store:
    """An imported store, read only through the HTTP API."""

    layout: str
    editions: list[Edition]
    client: FlaskClient

    def get(self, path: str) -> dict[str, Any]:
        response = self.client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)
        body: dict[str, Any] = response.get_json()
        return body

    def summary(self, as_of: date) -> dict[str, Any]:
        return self.get(f"/api/portfolio/summary?as_of={as_of.isoformat()}")

    def changes(self, after: date, until: date) -> dict[str, Any]:
        return self.get(f"/api/portfolio/changes?from={after.isoformat()}&to={until.isoformat()}")

    def figures(self) -> dict[str, tuple[int, int, Decimal]]:
        """(projects, costed projects, total cost) on each imported edition's date."""
        found = {}
        for edition in self.editions:
            body = self.summary(edition.date)
            found[edition.ref] = (
                body["projects"],
                body["costed_projects"],
                Decimal(body["total_cost"]),
            )
        return found


@contextmanager
def _services(
    backend: str, request: pytest.FixtureRequest, name: str, currency: str = "EUR"
) -> Iterator[Services]:
    """Services on a fresh SQLite file or a fresh PostgreSQL schema, for one module."""
    schema: str | None = None
    if backend == "sqlite":
        folder = request.getfixturevalue("tmp_path_factory").mktemp(name)
        settings = Settings(
            database_url=f"sqlite:///{folder / 'panorama.sqlite3'}", currency=currency
        )
    else:
        url: str = request.getfixturevalue("pg_url")
        schema = f"t_{name}_{uuid.uuid4().hex[:8]}"
        settings = Settings(database_url=url, database_schema=schema, currency=currency)
    services = bootstrap(settings, today=lambda: TODAY)
    try:
        yield services
    finally:
        services.close()
        if schema is not None:
            with psycopg.connect(settings.postgres_conninfo, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


def _store(services: Services, layout: str, editions: list[Edition]) -> Store:
    summary = run_import(services, editions)  # what `panorama import` runs, after_commit too
    assert summary.events > 0 and summary.position is not None
    app = create_app(services)
    app.testing = True
    client = authorize(app.test_client(), make_token(services))  # /history is for auditors
    return Store(layout, sorted(editions, key=lambda e: e.date), client)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(
            (layout, backend),
            marks=[pytest.mark.integration] if backend == "postgres" else [],
            id=f"{layout}-{backend}",
        )
        for backend in ("sqlite", "postgres")
        for layout in LAYOUTS
    ],
)
def panorama(request: pytest.FixtureRequest) -> Iterator[Store]:
    """The eight derived editions, in one layout, imported into one backend."""
    layout, backend = request.param
    editions = [e for path in LAYOUTS[layout] for e in parse_panorama(path)]
    with _services(backend, request, layout) as services:
        yield _store(services, layout, editions)


@pytest.fixture(scope="module", params=BACKENDS)
def raw(request: pytest.FixtureRequest) -> Iterator[Store]:
    """The three raw official DISIC files imported into one backend."""
    editions = [e for path in RAW for e in parse_panorama(path)]
    with _services(request.param, request, "raw") as services:
        yield _store(services, "raw", editions)


@pytest.fixture(scope="module", params=BACKENDS)
def gmpp(request: pytest.FixtureRequest) -> Iterator[Store]:
    """The six GMPP annual files imported into one backend (a portfolio in pounds)."""
    editions = [parse_gmpp(path) for path in sorted(GMPP.glob("gmpp_*.csv"))]
    with _services(request.param, request, "gmpp", currency="GBP") as services:
        yield _store(services, "gmpp", editions)


def _meur(amount: str | Decimal) -> Decimal:
    return Decimal(amount) / MEUR


# -- the panorama: what the published files say --------------------------------------------


def test_the_summary_file_gives_the_figures_quoted_in_the_issue() -> None:
    assert sorted(PUBLISHED) == [
        "2016-11", "2017-02", "2017-06", "2017-11", "2018-03", "2018-07", "2018-11", "2019-03",
    ]  # fmt: skip
    assert PUBLISHED["2016-11"] == (57, 49, Decimal("2292.9") * MEUR)
    assert PUBLISHED["2017-02"] == (61, 52, Decimal("2505.2") * MEUR)
    assert PUBLISHED["2018-03"] == (61, 59, Decimal("2808.78") * MEUR)
    assert RAW_README["2016-11"] == PUBLISHED["2016-11"]
    assert RAW_README["2017-06"] == PUBLISHED["2017-06"]


# -- the panorama: the derived layouts -----------------------------------------------------


def test_the_summary_on_each_edition_date_gives_the_published_table_figures(
    panorama: Store,
) -> None:
    assert [e.ref for e in panorama.editions] == sorted(PUBLISHED)
    expected = dict(PUBLISHED)
    for ref, exact in EXACT_WHERE_ROUNDED.items():
        rows, costed, rounded = expected[ref]
        assert (exact / MEUR).quantize(Decimal("0.01")) * MEUR == rounded  # to 0.01 M€
        expected[ref] = (rows, costed, exact)
    assert panorama.figures() == expected


def test_the_first_editions_as_the_issue_quotes_them(panorama: Store) -> None:
    nov_2016 = panorama.summary(date(2016, 11, 3))  # published 3 November 2016
    assert (nov_2016["projects"], nov_2016["costed_projects"]) == (57, 49)
    assert nov_2016["total_cost"] == "2292900000.00"  # euros, as a decimal string
    feb_2017 = panorama.summary(date(2017, 2, 1))
    assert (feb_2017["projects"], feb_2017["costed_projects"]) == (61, 52)
    assert _meur(feb_2017["total_cost"]) == Decimal("2505.2")


def test_march_2018_engages_the_total_less_the_costs_in_cadrage(panorama: Store) -> None:
    body = panorama.summary(date(2018, 2, 28))  # published 28 February 2018
    assert (body["projects"], body["costed_projects"]) == (61, 59)
    total, engaged = _meur(body["total_cost"]), _meur(body["total_cost_engaged"])
    assert total == Decimal("2808.78")
    assert _meur(body["by_phase"]["Cadrage"]["total_cost"]) == Decimal("114.92")
    assert engaged == total - Decimal("114.92") == Decimal("2693.86")


def test_the_interministerial_projects_match_each_headline(panorama: Store) -> None:
    found = {
        e.ref: panorama.summary(e.date)["interministerial_projects"] for e in panorama.editions
    }
    assert found == {ref: int(SUMMARY[ref]["interministerial_projects"]) for ref in found}


def _mean_durations(store: Store) -> dict[str, Decimal]:
    """The API's mean duration on each edition date, to the headline's 0.1 year."""
    return {
        e.ref: Decimal(store.summary(e.date)["mean_duration_years"]).quantize(Decimal("0.1"))
        for e in store.editions
    }


def test_the_mean_duration_matches_each_headline_to_a_tenth_of_a_year(panorama: Store) -> None:
    found = _mean_durations(panorama)
    assert found == {ref: Decimal(SUMMARY[ref]["mean_duration_years"]) for ref in found}


def test_july_2018_mean_duration_matches_its_headline(panorama: Store) -> None:
    assert _mean_durations(panorama)["2018-07"] == Decimal(
        SUMMARY["2018-07"]["mean_duration_years"]
    )


def _file_mean_durations(path: Path) -> Decimal:
    """The mean of the durations an edition's file publishes (none is given in Cadrage)."""
    with path.open(encoding="utf-8") as f:
        years = [Decimal(r["duree_annees"]) for r in csv.DictReader(f) if r["duree_annees"]]
    return sum(years, Decimal(0)) / len(years)


def test_the_mean_duration_is_the_mean_of_the_published_durations(panorama: Store) -> None:
    found = {e.ref: panorama.summary(e.date)["mean_duration_years"] for e in panorama.editions}
    published = {
        ref: str(_file_mean_durations(DERIVED / f"panorama_{ref}.csv").quantize(Decimal("0.01")))
        for ref in found
    }
    assert found == published


def test_march_2019_mean_duration_leaves_out_the_withheld_projects(panorama: Store) -> None:
    body = panorama.summary(date(2019, 3, 1))
    # 44 published durations average 6.557 years (headline 6.6); SI SAMU and SIRHEN, whose
    # figures are withheld, kept their earlier planned ends but are not counted.
    assert _file_mean_durations(DERIVED / "panorama_2019-03.csv").quantize(Decimal("0.001")) == (
        Decimal("6.557")
    )
    assert body["mean_duration_years"] == "6.56"
    assert SUMMARY["2019-03"]["mean_duration_years"] == "6.6"
    listed = panorama.get("/api/projects?as_of=2019-03-01&per_page=100")["items"]
    withheld = [p for p in listed if p["name"] in {"SI SAMU", "SIRHEN"}]
    assert [(p["figures_withheld"], p["duration_years"], p["planned_end"]) for p in withheld] == [
        (True, None, None),
        (True, None, None),
    ]


def test_march_2019_lists_projects_whose_figures_are_withheld(panorama: Store) -> None:
    body = panorama.summary(date(2019, 3, 1))
    # The table has 48 rows, four without a cost; the headline says 46 projects.
    assert (body["projects"], body["costed_projects"]) == (48, 44)
    assert _meur(body["total_cost"]) == Decimal("1636.4")
    listed = panorama.get("/api/projects?as_of=2019-03-01&per_page=100")["items"]
    uncosted = {p["name"]: p["figures_withheld"] for p in listed if p["cost"] is None}
    assert uncosted == {
        "SI SAMU": True,  # the 2019 sentence: figures deliberately not published
        "SIRHEN": True,
        "FRANCE CONNECT PHASE II": True,  # costed 23.9 M€ in June 2017, blank since
        "PROJAE – AXONE": False,  # never costed (Cadrage)
    }


def test_changes_between_editions_list_the_projects_that_entered_and_left(
    panorama: Store,
) -> None:
    _assert_movements(panorama)


def test_projects_that_come_back_rejoin_rather_than_register_again(panorama: Store) -> None:
    rejoined = _rejoined(panorama)
    assert len(rejoined) == 2  # the import's summary: "rejoined: 2"
    for project_id_ in rejoined:
        steps = panorama.get(f"/api/projects/{project_id_}/history")["steps"]
        kinds = [step["event"]["type"] for step in steps]
        assert kinds.count("Registered") == 1
        assert kinds.index("LeftPortfolio") < kinds.index("RejoinedPortfolio")


# -- the panorama: the raw official files --------------------------------------------------


def test_the_raw_official_files_give_the_totals_of_the_readme(raw: Store) -> None:
    assert [e.ref for e in raw.editions] == ["2016-11", "2017-06", "2018-03"]
    assert raw.figures() == RAW_README
    nov_2016 = raw.summary(date(2016, 11, 3))
    assert nov_2016["total_cost"] == "2292900000.00"
    assert nov_2016["interministerial_projects"] == 18
    assert nov_2016["mean_duration_years"] == "6.22"


def test_the_raw_files_agree_with_the_summary_file_except_the_march_2018_workbook(
    raw: Store,
) -> None:
    found = raw.figures()
    assert {ref: found[ref] for ref in ("2016-11", "2017-06")} == {
        ref: PUBLISHED[ref] for ref in ("2016-11", "2017-06")
    }
    march = raw.summary(date(2018, 2, 28))
    # The workbook costs one more project in Cadrage (17.5 M€) than the dashboard's table,
    # so the total differs but the cost engaged (outside Cadrage) is the same: 2,693.86 M€.
    total, engaged = _meur(march["total_cost"]), _meur(march["total_cost_engaged"])
    in_cadrage = _meur(march["by_phase"]["Cadrage"]["total_cost"])
    assert (march["costed_projects"], total, in_cadrage) == (
        60,
        Decimal("2826.28"),
        Decimal("132.42"),
    )
    assert engaged == total - in_cadrage == Decimal("2693.86")


def test_the_raw_interministerial_projects_match_each_headline(raw: Store) -> None:
    found = {e.ref: raw.summary(e.date)["interministerial_projects"] for e in raw.editions}
    assert found == {ref: int(SUMMARY[ref]["interministerial_projects"]) for ref in found}


def test_changes_between_raw_editions_list_the_projects_that_entered_and_left(
    raw: Store,
) -> None:
    _assert_movements(raw)
    assert len(_rejoined(raw)) == 1


# -- the GMPP ------------------------------------------------------------------------------


def test_gmpp_2020_21_has_184_projects_and_542bn_of_whole_life_cost(gmpp: Store) -> None:
    body = gmpp.summary(date(2021, 3, 31))
    assert body["projects"] == 184
    total = Decimal(body["total_cost"])  # pounds: the file's currency
    assert total == Decimal("541951370000")
    # The IPA Annual Report 2021 states £542bn; the sum rounds to £542.0bn at £0.1bn
    # (half-even), and to £542bn at £1bn.
    assert (total / GBP_BN).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN) == Decimal("542.0")
    assert (total / GBP_BN).quantize(Decimal("1"), rounding=ROUND_HALF_EVEN) == Decimal("542")


def test_gmpp_2022_23_gives_the_median_and_cost_weighted_drift_next_to_the_mean(
    gmpp: Store,
) -> None:
    body = gmpp.summary(date(2023, 3, 31))
    listed = gmpp.get("/api/projects?as_of=2023-03-31&per_page=1000")["items"]
    drifting = [p for p in listed if p["budget_drift_pct"] is not None]
    # One project went from £6.86m to £1,638m: +23,777 %, which alone lifts the mean.
    [outlier] = [p for p in drifting if Decimal(p["budget_drift_pct"]) > 10_000]
    assert (outlier["baseline_cost"], outlier["cost"]) == ("6860000.00", "1638000000.00")
    assert Decimal(body["mean_budget_drift_pct"]) > 100
    drifts = sorted(Decimal(p["budget_drift_pct"]) for p in drifting)
    assert len(drifts) % 2 == 1 and body["median_budget_drift_pct"] == str(drifts[len(drifts) // 2])
    cost = sum(Decimal(p["cost"]) for p in drifting)
    base = sum(Decimal(p["baseline_cost"]) for p in drifting)
    weighted = ((cost - base) / base * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    assert body["weighted_budget_drift_pct"] == str(weighted)
    assert Decimal(body["median_budget_drift_pct"]) < weighted < 20

    slipping = [p for p in listed if p["schedule_drift_pct"] is not None]
    slip = sum(
        (date.fromisoformat(p["planned_end"]) - date.fromisoformat(p["baseline_end"])).days
        for p in slipping
    )
    span = sum(
        (date.fromisoformat(p["baseline_end"]) - date.fromisoformat(p["start_date"])).days
        for p in slipping
    )
    weighted = (Decimal(slip) / Decimal(span) * 100).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    assert body["weighted_schedule_drift_pct"] == str(weighted)


def test_each_gmpp_snapshot_gives_its_file_figures(gmpp: Store) -> None:
    assert gmpp.figures() == {
        e.ref: (len(e.projects), e.count_costed(), e.total_cost()) for e in gmpp.editions
    }


def test_changes_between_gmpp_years_list_the_projects_that_entered_and_left(gmpp: Store) -> None:
    _assert_movements(gmpp)


# -- helpers -------------------------------------------------------------------------------


def _ids(edition: Edition) -> set[str]:
    """The ids of the projects an edition lists, from their normalised keys."""
    return {str(project_id(edition.series, key)) for key in edition.projects}


def _events(project: dict[str, Any], kind: str, day: date) -> list[dict[str, Any]]:
    return [
        e for e in project["events"] if e["type"] == kind and e["effective_date"] == day.isoformat()
    ]


def _assert_movements(store: Store) -> None:
    """Between two consecutive editions, exactly the projects that entered and left."""
    for before, after in zip(store.editions, store.editions[1:], strict=False):
        between = f"{before.ref} -> {after.ref}"
        body = store.changes(before.date, after.date)
        entered = {p["id"]: p for p in body["entered"]}
        left = {p["id"]: p for p in body["left"]}
        assert set(entered) == _ids(after) - _ids(before), between
        assert set(left) == _ids(before) - _ids(after), between
        for project in entered.values():
            arrivals = _events(project, "Registered", after.date) + _events(
                project, "RejoinedPortfolio", after.date
            )
            assert len(arrivals) == 1, (between, project["name"])
            assert arrivals[0]["source"] == after.source
        for project in left.values():
            [departure] = _events(project, "LeftPortfolio", after.date)
            assert departure["source"] == after.source
            assert departure["narrative"] == f"not listed in {after.source}"


def _rejoined(store: Store) -> list[str]:
    """The ids of the projects that entered an edition by rejoining the portfolio."""
    return [
        project["id"]
        for before, after in zip(store.editions, store.editions[1:], strict=False)
        for project in store.changes(before.date, after.date)["entered"]
        if _events(project, "RejoinedPortfolio", after.date)
    ]


# -- ministries and currencies -------------------------------------------------------------
def test_the_armees_are_one_ministry_from_2016_to_2019(panorama: Store) -> None:
    for as_of, published in ((date(2016, 11, 30), "MINDEF"), (date(2019, 3, 31), "MAR")):
        body = panorama.summary(as_of)
        assert body["currency"] == "EUR"
        ministries = body["by_ministry"]
        assert published not in ministries and "MINARM" in ministries, as_of
        assert ministries["MINARM"]["name"] == "Ministère des Armées"
        listed = panorama.get(f"/api/projects?as_of={as_of}&ministry={published.lower()}")
        assert listed["total"] == ministries["MINARM"]["projects"] > 0
        assert {p["published_ministry_code"] for p in listed["items"]} == {published}
    renamed = {"MENESR": "MEN", "MAAF": "MAA", "MEEM": "MTES", "MCC": "MC", "MAEDI": "MEA"}
    early = panorama.summary(date(2016, 11, 30))["by_ministry"]
    late = panorama.summary(date(2019, 3, 31))["by_ministry"]
    for old, stable in renamed.items():
        assert old not in early and stable in early and stable in late, old


def test_gmpp_figures_are_stated_in_pounds(gmpp: Store) -> None:
    body = gmpp.summary(date(2021, 3, 31))
    assert body["currency"] == "GBP"
    assert "MOD" in body["by_ministry"] and "MoD" not in body["by_ministry"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_gmpp_into_a_euro_portfolio_is_refused_whole(
    backend: str, request: pytest.FixtureRequest
) -> None:
    editions = [parse_gmpp(GMPP / "gmpp_2020_21.csv")]
    with _services(backend, request, "gmpp_eur") as services:
        head = services.portfolio.recorder.max_notification_id()
        with pytest.raises(ImportRejected) as refused:
            run_import(services, editions)
        assert "is in GBP but this portfolio is in EUR" in str(refused.value)
        assert "PORTFOLIO_CURRENCY=GBP" in str(refused.value)
        assert services.portfolio.recorder.max_notification_id() == head  # nothing recorded
