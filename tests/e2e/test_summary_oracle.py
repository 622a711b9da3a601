"""The portfolio summary over HTTP equals a plain computation from the recorded events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from psycopg import sql

from domain.application import Provenance
from service.app import create_app
from service.bootstrap import Services, bootstrap
from service.config import Settings
from tests.e2e.conftest import bearer, make_token
from tests.histories import BASE, TODAY, Step, apply_step, histories, register_projects
from tests.oracle_figures import (
    mismatches,
    portfolio_figures,
    recorded_project_events,
    streams_by_project,
)

probe_days = st.lists(st.integers(min_value=-250, max_value=1700), min_size=3, max_size=6)


@contextmanager
def fresh_store(settings: Settings) -> Iterator[Services]:
    """Services on a new, empty store of the same kind as `settings` (one per example)."""
    suffix = uuid.uuid4().hex[:8]
    postgres = settings.database_url.startswith("postgres")
    if postgres:
        fresh = replace(settings, database_schema=f"{settings.database_schema}_{suffix}")
    else:
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        fresh = replace(settings, database_url=f"sqlite:///{path.with_name(f'{suffix}.sqlite3')}")
    services = bootstrap(fresh, today=lambda: TODAY)
    try:
        yield services
    finally:
        services.close()
        if postgres:
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                conn.execute(drop.format(sql.Identifier(fresh.database_schema)))


def record(services: Services, history: list[Step]) -> None:
    """Apply the history, letting the read model catch up only where the history says."""
    portfolio = services.portfolio
    catch_up = services.after_commit
    services.after_commit = lambda position: None
    ids = register_projects(portfolio)
    programme = portfolio.create_programme(
        name="FTAP",
        envelope=Decimal("1e9"),
        provenance=Provenance(BASE, "tester", "test"),
    ).id
    for step in history:
        apply_step(portfolio, ids, programme, step)
        if step.catch_up:
            catch_up(portfolio.recorder.max_notification_id())
    catch_up(portfolio.recorder.max_notification_id())


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(history=histories, probes=probe_days, pick=st.integers(min_value=0, max_value=10_000))
def test_the_summary_is_what_a_plain_sum_over_the_recorded_events_gives(
    settings: Settings, history: list[Step], probes: list[int], pick: int
) -> None:
    with fresh_store(settings) as services:
        record(services, history)
        client = create_app(services).test_client()
        headers = bearer(make_token(services, "auditor"))
        streams = streams_by_project(recorded_project_events(services.portfolio))
        stamps = sorted(event.timestamp for events in streams.values() for _, event in events)
        knowledge: list[datetime | None] = [
            None,
            stamps[pick % len(stamps)],
            stamps[(pick * 7) % len(stamps)] - timedelta(microseconds=1),
            stamps[0] - timedelta(microseconds=1),
        ]
        for offset in probes:
            as_of = BASE + timedelta(days=offset)
            for known_at in knowledge:
                query = {"as_of": as_of.isoformat()}
                if known_at is not None:
                    query["known_at"] = known_at.isoformat()
                response = client.get("/api/portfolio/summary", query_string=query, headers=headers)
                assert response.status_code == 200, response.get_data(as_text=True)
                expected = portfolio_figures(streams, as_of, known_at)
                problems = mismatches(response.get_json(), expected)
                assert not problems, f"as_of={as_of} known_at={known_at}: {problems}"
