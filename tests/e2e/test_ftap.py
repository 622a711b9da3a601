"""The FTAP on real data: `panorama import ftap` then the programme API, SQLite and PostgreSQL.

The panorama history is imported first (the long file of every edition), so laureates that
are panorama projects (FranceConnect phase 2) are matched to them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from importers import parse_panorama
from importers.ftap_run import programme_id
from importers.matching import project_id
from service.app import create_app
from service.bootstrap import Services
from service.cli_import import import_group, run_import
from service.config import Settings
from tests.conftest import SHARED_DATA
from tests.e2e.conftest import assert_problem, authorize, make_token

FTAP = SHARED_DATA / "ftap"
AWARDS, PROGRAMME = FTAP / "ftap_awards.csv", FTAP / "ftap_programme.csv"
LONG = SHARED_DATA / "panorama" / "derived" / "panorama_all_editions_long.csv"
TODAY = date(2026, 12, 1)
FTAP_1 = str(programme_id("FTAP 2018-2022"))
FRANCECONNECT = str(project_id("panorama", "franceconnectphaseii"))


def eur(amount: str, kind: str = "announced") -> dict[str, str]:
    return {"amount": amount, "currency": "EUR", "kind": kind}


@dataclass
class Store:
    services: Services
    client: FlaskClient
    edition_dates: list[date]
    summaries_before: dict[date, Any]

    def ftap(self, awards: Path = AWARDS, programme: Path = PROGRAMME) -> Result:
        args = [str(awards), "--programme", str(programme)]
        return CliRunner().invoke(import_group, ["ftap", *args], obj={"services": self.services})

    def get(self, path: str) -> Any:
        response = self.client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def head(self) -> int:
        return int(self.services.portfolio.recorder.max_notification_id() or 0)

    def summaries(self) -> dict[date, Any]:
        return {
            day: _without_time(self.get(f"/api/portfolio/summary?as_of={day.isoformat()}"))
            for day in self.edition_dates
        }


def _without_time(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("known_at", "position")}


@pytest.fixture
def store(settings: Settings, make_services: Callable[..., Services]) -> Store:
    """The panorama history imported, its summaries on every edition date kept."""
    settings = replace(settings, secret_key="ftap-test-secret", allow_loopback_webhooks=True)
    services = make_services(settings, today=lambda: TODAY)
    editions = parse_panorama(LONG)
    run_import(services, editions)
    app = create_app(services)
    app.testing = True
    client = authorize(app.test_client(), make_token(services, "admin"))
    found = Store(services, client, sorted(e.date for e in editions), {})
    found.summaries_before = found.summaries()
    return found


@pytest.fixture
def imported(store: Store) -> Store:
    result = store.ftap()
    assert result.exit_code == 0, result.output
    return store


def test_imported_twice_the_second_import_records_nothing(imported: Store) -> None:
    head = imported.head()
    again = imported.ftap()
    assert again.exit_code == 0, again.output
    assert "events recorded: 0" in again.output
    assert imported.head() == head


def test_call_2018_1_on_30_june_2018_shows_published_against_itemised(imported: Store) -> None:
    call = imported.get(f"/api/funding-programmes/{FTAP_1}/calls/2018-1?as_of=2018-06-30")
    assert call["published"]["laureates"] == 17
    assert call["published"]["total"] == eur("126000000.00")
    assert call["itemised"] == {"laureates": 11, "with_amount": 11, "total": eur("98300000.00")}
    assert call["not_itemised"] == {"laureates": 6, "total": eur("27700000.00")}
    assert len(call["laureates"]) == 11
    view = imported.get(f"/api/funding-programmes/{FTAP_1}?as_of=2018-06-30")
    assert [c["call"] for c in view["calls"]] == ["2018-1"]  # call 2 was not yet announced
    assert view["committed"] == eur("98300000.00")
    before = imported.client.get(f"/api/funding-programmes/{FTAP_1}/calls/2018-1?as_of=2018-06-19")
    assert_problem(before, 404, "call")


def test_a_laureate_without_an_amount_is_not_an_award_of_zero(imported: Store) -> None:
    call = imported.get(f"/api/funding-programmes/{FTAP_1}/calls/2018-2?as_of=2019-01-01")
    mentor = next(lau for lau in call["laureates"] if "Mentor" in lau["name"])
    assert mentor["announced"] is None and mentor["savings"] == eur("2300000.00", "savings")
    assert call["itemised"] == {"laureates": 14, "with_amount": 2, "total": eur("5500000.00")}
    assert call["published"]["total"] == eur("68800000.00")


def test_the_envelope_in_force_in_mid_2022_is_the_revised_one(imported: Store) -> None:
    early = imported.get(f"/api/funding-programmes/{FTAP_1}?as_of=2021-12-31")
    mid = imported.get(f"/api/funding-programmes/{FTAP_1}?as_of=2022-07-01")
    assert early["envelope"] == eur("700000000.00", "envelope")
    assert mid["envelope"] == eur("780000000.00", "envelope")
    revision = mid["envelope_history"][-1]
    assert revision["effective_date"] == "2022-01-01" and "LFI 2022" in revision["reason"]
    listed = imported.get("/api/funding-programmes?as_of=2022-07-01")["items"]
    assert {p["name"] for p in listed} == {"FTAP 2018-2022"}  # FTAP 2 opened in 2023
    assert listed[0]["envelope"] == eur("780000000.00", "envelope")


def test_an_award_that_would_over_commit_the_envelope_on_its_date_is_refused(
    imported: Store,
) -> None:
    path = f"/api/funding-programmes/{FTAP_1}"
    committed = imported.get(f"{path}?as_of=2019-01-01")["available"]["amount"]
    body = {"project_id": FRANCECONNECT, "effective_date": "2019-01-01"}
    over = f"{float(committed) + 0.01:.2f}"  # one cent more than is left on that date
    head = imported.head()
    refused = imported.client.post(f"{path}/awards", json=body | {"amount": over})
    problem = assert_problem(refused, 409, "amount")
    assert "over-commit" in problem["detail"] and "2019-01-01" in problem["detail"]
    assert imported.head() == head
    # The same amount is within the revised envelope of 2022 (780 M€).
    accepted = imported.client.post(
        f"{path}/awards", json=body | {"amount": over, "effective_date": "2022-06-01"}
    )
    assert accepted.status_code == 201, accepted.get_json()
    # A revision below what is already committed is refused, with a clear message.
    low = {"envelope": "100000000.00", "reason": "cut", "effective_date": "2019-01-01"}
    problem = assert_problem(imported.client.post(f"{path}/envelope", json=low), 409, "envelope")
    assert "below what is already committed" in problem["detail"]


def test_kinds_of_money_are_never_added_together(imported: Store) -> None:
    path = f"/api/funding-programmes/{FTAP_1}"
    before = imported.get(path)
    engaged = {"project_id": FRANCECONNECT, "amount": "25000000.00", "kind": "engaged"}
    response = imported.client.post(
        f"{path}/awards", json=engaged | {"effective_date": "2019-07-02"}
    )
    assert response.status_code == 201, response.get_json()
    after = imported.get(path)
    assert after["committed"] == before["committed"]
    assert after["engaged"] == eur("25000000.00", "engaged")
    call = imported.get(f"{path}/calls/2018-1")
    france = next(lau for lau in call["laureates"] if lau["project_id"] == FRANCECONNECT)
    assert france["announced"] == eur("19300000.00") and france["engaged"] == eur(
        "25000000.00", "engaged"
    )


def test_franceconnect_phase_ii_carries_its_award_in_the_api_and_on_its_page(
    imported: Store,
) -> None:
    project = imported.get(f"/api/projects/{FRANCECONNECT}?as_of=2018-07-01")
    assert project["name"] == "FRANCE CONNECT PHASE II"
    assert project["funding_received"] == "19300000.00"
    assert imported.get(f"/api/projects/{FRANCECONNECT}?as_of=2018-06-19")["funding_received"] in (
        "0",
        "0.00",
    )
    page = imported.client.get(f"/projects/{FRANCECONNECT}?lang=en")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "FTAP 2018-2022" in html and "€19.30m" in html


def test_no_ftap_only_laureate_changes_a_panorama_edition(imported: Store) -> None:
    assert imported.summaries() == imported.summaries_before
    names = {p["name"] for p in imported.get("/api/projects?per_page=500")["items"]}
    assert not any("France Cloud" in n or "Géoplateforme" in n for n in names)


def test_a_malformed_row_is_refused_naming_file_row_and_column(
    store: Store, tmp_path: Path
) -> None:
    broken = tmp_path / "ftap_awards.csv"
    shutil.copy(AWARDS, broken)
    lines = broken.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[4] = lines[4].replace(",9.6,", ",9.6x,")  # row 5 (the header is row 1): the HDH
    broken.write_text("".join(lines), encoding="utf-8")
    head = store.head()
    result = store.ftap(awards=broken)
    assert result.exit_code != 0
    assert (
        "import refused, nothing recorded: ftap_awards.csv, row 5, column 'amount_meur': "
        "'9.6x' is not a number"
    ) in result.output
    assert store.head() == head


CLOSED_PORT_URL = "http://127.0.0.1:9/hook"  # loopback discard port: nothing listens


def test_a_subscriber_is_told_once_when_commitment_crosses_90_pct_of_the_envelope(
    store: Store,
) -> None:
    rule = {
        "metric": "programme_commitment_share_pct",
        "comparator": ">=",
        "threshold": "90",
        "clear_threshold": "80",
        "scope": "programme",
        "scope_value": FTAP_1,
        "channel": "webhook",
        "url": CLOSED_PORT_URL,
    }
    created = store.client.post("/api/subscriptions", json=rule)
    assert created.status_code == 201, created.get_json()
    assert store.ftap().exit_code == 0
    assert store.get("/api/alerts") == []  # 176.84 M€ of 780 M€ (22.67 %)
    path = f"/api/funding-programmes/{FTAP_1}/awards"
    award = {"project_id": FRANCECONNECT, "effective_date": "2022-06-01"}
    for amount in ("540000000.00", "1000000.00"):
        response = store.client.post(path, json=award | {"amount": amount})
        assert response.status_code == 201, response.get_json()
    found = store.get("/api/alerts")
    assert [(a["kind"], a["subject"], a["value_after"]) for a in found] == [
        ("raised", f"programme:{FTAP_1}", "91.90")
    ]
    wrong = store.client.post("/api/subscriptions", json=rule | {"scope": "portfolio"})
    assert_problem(wrong, 422, "scope")
