"""Numbers, money and dates follow the page's locale; downloads are neutralised."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask

from service.app import create_app
from service.bootstrap import Services
from service.config import Settings
from service.web import i18n
from service.web.downloads import neutralise, table_response


@pytest.fixture
def app(tmp_path: Path, make_services: object) -> Flask:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.sqlite3'}")
    services: Services = make_services(settings)  # type: ignore[operator]
    return create_app(services)


def _spaces(text: str) -> str:
    return text.replace("\u202f", " ").replace("\u00a0", " ")


def test_french_money_dates_and_percentages(app: Flask) -> None:
    with app.test_request_context("/?lang=fr"):
        assert _spaces(i18n.money(Decimal("1636400000"))) == "1 636,40 M€"
        assert i18n.day(date(2019, 3, 31)) == "31 mars 2019"
        assert _spaces(i18n.percent(Decimal("36.44"))) == "36,4 %"
        assert _spaces(i18n.years(Decimal("6.557"))) == "6,6 ans"


def test_english_money_in_pounds_and_dates(app: Flask) -> None:
    with app.test_request_context("/?lang=en"):
        assert i18n.money(Decimal("542000000000"), "GBP") == "£542.0bn"
        assert i18n.money(Decimal("6860000"), "GBP") == "£6.86m"
        assert i18n.day(date(2021, 3, 31)) == "31 March 2021"
        assert i18n.percent(Decimal("36.44")) == "36.4%"


def test_accept_language_chooses_when_the_url_does_not(app: Flask) -> None:
    with app.test_request_context("/", headers={"Accept-Language": "en-GB,en;q=0.8"}):
        assert i18n.page_lang() == "en"
    with app.test_request_context("/?lang=fr", headers={"Accept-Language": "en"}):
        assert i18n.page_lang() == "fr"
    with app.test_request_context("/", headers={"Accept-Language": "de"}):
        assert i18n.page_lang() == "fr"


@pytest.mark.parametrize("text", ["=1+2", "+33", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_text_that_a_spreadsheet_would_run_is_neutralised(text: str) -> None:
    assert neutralise(text) == "'" + text
    assert neutralise("SIRHEN") == "SIRHEN"
    assert neutralise(Decimal("-2.5")) == Decimal("-2.5")  # numbers stay numbers


def test_a_csv_download_neutralises_text_but_not_negative_numbers(app: Flask) -> None:
    with app.test_request_context("/"):
        response = table_response(
            "csv", "t", ["name", "drift"], [["=HYPERLINK(1)", Decimal("-3.5")]], {"position": 7}
        )
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows == [["name", "drift"], ["'=HYPERLINK(1)", "-3.5"]]
    assert response.headers["X-Panorama-Position"] == "7"
