"""Imports on the real stores (SQLite file, PostgreSQL): atomic, idempotent across restarts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg
from psycopg import sql

from domain.application import Portfolio
from importers.matching import project_id
from importers.panorama import parse_panorama
from importers.run import import_editions
from service.config import Settings
from tests.conftest import SHARED_DATA

LONG = SHARED_DATA / "panorama" / "derived" / "panorama_all_editions_long.csv"


def open_portfolio(settings: Settings) -> Portfolio:
    if settings.is_postgres:
        with psycopg.connect(settings.postgres_conninfo, autocommit=True) as conn:
            name = sql.Identifier(settings.database_schema)
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
    return Portfolio(env=settings.eventsourcing_env(), today=lambda: date(2026, 12, 1))


def test_import_then_reimport_after_a_restart(settings: Settings) -> None:
    editions = parse_panorama(LONG)
    portfolio = open_portfolio(settings)
    summary = import_editions(portfolio, editions)
    # An unseeded store: the file's ministries are registered with the projects (one warning each)
    new_ministries = [w for w in summary.warnings if "not in the ministries reference" in w]
    assert summary.position == summary.events == 756 + 8 + 1 + len(new_ministries)
    portfolio.close()

    reopened = open_portfolio(settings)
    again = import_editions(reopened, editions)
    assert (again.events, again.position) == (0, None)
    events = reopened.project_events(project_id("panorama", "sirhen"))
    assert events[0].cost == Decimal(496_400_000)
    revised = [e for e in events if type(e).__name__ == "DetailsRevised"]
    assert revised and all(isinstance(e.changes, dict) for e in revised)
    starts = [e.changes["start_date"] for e in revised if "start_date" in e.changes]
    assert all(isinstance(d, date) for d in starts)
    reopened.close()
