"""The oracle: the read model answers exactly what a fold of the selected events gives."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.application import Provenance
from domain.ministry import Ministries
from projections import queries
from projections.figures import portfolio_summary
from projections.rebuild import rebuild
from projections.registry import catch_up
from projections.schema import PROJECTION
from projections.state import ProjectState, fold
from service.bootstrap import bootstrap, store_opener
from service.config import Settings
from tests.histories import BASE, TODAY, apply_step, histories, register_projects

probe_days = st.lists(st.integers(min_value=-250, max_value=1700), min_size=3, max_size=6)


def with_reference(state: ProjectState, reference: Ministries) -> ProjectState:
    """The folded state with its ministry resolved through the reference, as a query does."""
    ministry = reference.resolve(state.ministry_code)
    state.stable_ministry_code = ministry.code
    state.ministry_reference_name = ministry.name
    return state


def check_against_oracle(services: object, ids: list, probes: list[int], pick: int) -> None:
    from service.bootstrap import Services

    assert isinstance(services, Services)
    portfolio = services.portfolio
    streams = {str(i): portfolio.project_events(i) for i in ids}
    stamps = sorted(e.timestamp for events in streams.values() for e in events)
    knowledge = [None, stamps[pick % len(stamps)], stamps[(pick * 7) % len(stamps)]]
    knowledge.append(stamps[pick % len(stamps)] - timedelta(microseconds=1))
    with services.db.transaction(write=False) as tx:
        for offset in probes:
            as_of = BASE + timedelta(days=offset)
            for known_at in knowledge:
                expected = {
                    pid: fold(ev, as_of=as_of, known_at=known_at) for pid, ev in streams.items()
                }
                for pid, state in expected.items():
                    got = queries.project_state(tx, pid, as_of, known_at)
                    assert got == state, (pid, as_of, known_at)
                reference = portfolio.ministries()
                assert reference is not None
                oracle = portfolio_summary(
                    with_reference(s, reference) for s in expected.values() if s is not None
                )
                assert queries.summary(tx, as_of, known_at) == oracle


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=histories, probes=probe_days, pick=st.integers(min_value=0, max_value=10_000))
def test_read_model_equals_fold_of_events_on_sqlite(
    history: list, probes: list[int], pick: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'oracle.sqlite3'}"
        services = bootstrap(Settings(database_url=url), today=lambda: TODAY)
        services.after_commit = lambda position: None  # catch up only where the history says
        try:
            portfolio = services.portfolio
            ids = register_projects(portfolio)
            programme = portfolio.create_programme(
                name="FTAP",
                envelope=Decimal("1e9"),
                provenance=Provenance(BASE, "tester", "test"),
            ).id
            for step in history:
                apply_step(portfolio, ids, programme, step)
                if step.catch_up:
                    catch_up(services.db, portfolio, PROJECTION, batch_size=step.catch_up)
            catch_up(services.db, portfolio, PROJECTION, batch_size=7)
            check_against_oracle(services, ids, probes, pick)
        finally:
            services.close()


def test_rebuild_gives_the_same_answers_as_incremental_catch_up(tmp_path: Path) -> None:
    from tests.histories import Step

    services = bootstrap(
        Settings(database_url=f"sqlite:///{tmp_path / 'r.sqlite3'}"), today=lambda: TODAY
    )
    try:
        portfolio = services.portfolio
        ids = register_projects(portfolio)
        programme = portfolio.create_programme(
            name="FTAP",
            envelope=Decimal("1e9"),
            provenance=Provenance(BASE, "tester", "test"),
        ).id
        for n in range(60):
            kind = ["cost", "schedule", "phase", "withhold", "disclose", "cost"][n % 6]
            day = (n * 37) % 1400 if n % 5 else (n * 3) % 200  # some backdated
            step = Step(n % 4, kind, day, (Decimal(1000 + n), "Déploiement", "Amber", True), 1)
            apply_step(portfolio, ids, programme, step)
            if n % 9 == 0:
                catch_up(services.db, portfolio, PROJECTION, batch_size=5)
        catch_up(services.db, portfolio, PROJECTION)
        with services.db.transaction(write=False) as tx:
            before = queries.summary(tx, BASE + timedelta(days=900), None)
        seen: list[tuple[int, int]] = []
        rebuild(services.db, portfolio, progress=lambda done, total: seen.append((done, total)))
        assert seen and seen[-1][0] == seen[-1][1]
        with services.db.transaction(write=False) as tx:
            assert queries.summary(tx, BASE + timedelta(days=900), None) == before
        check_against_oracle(services, ids, [0, 100, 500, 900, 1400], 3)
    finally:
        services.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(history=histories, probes=probe_days, pick=st.integers(min_value=0, max_value=10_000))
def test_read_model_equals_fold_of_events_on_postgres(
    pg_url: str, history: list, probes: list[int], pick: int
) -> None:
    import uuid

    import psycopg
    from psycopg import sql

    schema = f"t_oracle_{uuid.uuid4().hex[:10]}"
    services = bootstrap(Settings(database_url=pg_url, database_schema=schema), today=lambda: TODAY)
    services.after_commit = lambda position: None
    try:
        portfolio = services.portfolio
        ids = register_projects(portfolio)
        programme = portfolio.create_programme(
            name="FTAP",
            envelope=Decimal("1e9"),
            provenance=Provenance(BASE, "tester", "test"),
        ).id
        for step in history:
            apply_step(portfolio, ids, programme, step)
            if step.catch_up:
                catch_up(services.db, portfolio, PROJECTION, batch_size=step.catch_up)
        catch_up(services.db, portfolio, PROJECTION, batch_size=5)
        check_against_oracle(services, ids, probes, pick)
    finally:
        services.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_a_parallel_rebuild_on_postgres_equals_the_fold(pg_url: str, pg_schema: str) -> None:
    from tests.histories import Step

    settings = Settings(database_url=pg_url, database_schema=pg_schema)
    services = bootstrap(settings, today=lambda: TODAY)
    services.after_commit = lambda position: None
    try:
        portfolio = services.portfolio
        ids = register_projects(portfolio) + register_projects(portfolio)
        programme = portfolio.create_programme(
            name="FTAP",
            envelope=Decimal("1e9"),
            provenance=Provenance(BASE, "tester", "test"),
        ).id
        for n in range(120):
            kind = ["cost", "schedule", "phase", "withhold", "disclose", "cost", "award"][n % 7]
            day = (n * 37) % 1400 if n % 5 else (n * 3) % 200
            step = Step(0, kind, day, (Decimal(1000 + n), "Déploiement", "Amber", True), 1)
            apply_step(portfolio, [ids[n % len(ids)]] * 4, programme, step)
        catch_up(services.db, portfolio, PROJECTION)
        rebuild(services.db, portfolio, processes=2, open_store=store_opener(settings))
        with services.db.transaction(write=False) as tx:
            head = portfolio.recorder.max_notification_id()
            assert (
                tx.scalar("SELECT position FROM pr_tracking WHERE name = %s", ("project_states",))
                == head
            )
        check_against_oracle(services, ids, [0, 100, 500, 900, 1400], 5)
    finally:
        services.close()
