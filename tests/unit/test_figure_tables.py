"""The materialised portfolio figures answer what the per-project look-up answers.

On generated histories with backdated events, ministry aliases and a rename, on both
dialects: after the incremental catch-up (small batches, so that backdated events cross
checkpoints already written) and after a rebuild (on PostgreSQL the rebuild derives the
tables in SQL), whose tables must hold what the incremental path wrote.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from domain.application import Provenance
from domain.errors import DomainError
from domain.ministry import Alias
from projections import queries
from projections.db import Tx, as_date
from projections.figure_tables import SPAN_COMPARED, drift_sql, materialised_summary
from projections.figures import MONEY_SUMS, SUMS, drift_pct, portfolio_summary
from projections.rebuild import rebuild
from projections.registry import catch_up, setup_all
from projections.schema import LIVE, PROJECTION
from service.bootstrap import Services, bootstrap
from service.config import Settings
from tests.conftest import BACKENDS, PG_URL
from tests.histories import BASE, TODAY, Step, apply_step, histories, register_projects

probe_days = st.lists(st.integers(min_value=-250, max_value=1800), min_size=4, max_size=8)


@contextmanager
def store(backend: str) -> Iterator[Services]:
    """Services on a new, empty store (a fresh SQLite file or PostgreSQL schema)."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'figures.sqlite3'}"
            services = bootstrap(Settings(database_url=url), today=lambda: TODAY)
            try:
                yield services
            finally:
                services.close()
        return
    schema = f"t_figures_{uuid.uuid4().hex[:10]}"
    services = bootstrap(Settings(database_url=PG_URL, database_schema=schema), today=lambda: TODAY)
    try:
        yield services
    finally:
        services.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def record(services: Services, history: list[Step], backdate: int) -> None:
    """The history, on four projects plus two of a ministry known by an alias, renamed and
    given a second alias half-way, one of them moved to that alias by a backdated revision."""
    portfolio = services.portfolio
    services.after_commit = lambda position: None
    portfolio.register_ministry(
        "MTEST", "Ministère des essais", actor="tester", aliases=[Alias("MTST")]
    )
    ids = register_projects(portfolio)
    for code, day in (("MTST", 10), ("MTEST", 400)):
        ids.append(
            portfolio.register_project(
                provenance=Provenance(BASE + timedelta(days=day), "tester", "test"),
                name=f"Essai {code}",
                ministry_code=code,
                interministerial=False,
                start_date=BASE,
                phase="Cadrage",
                cost=Decimal("123456.78"),
                planned_end=BASE + timedelta(days=1000),
            ).id
        )
    programme = portfolio.create_programme(
        name="FTAP", envelope=Decimal("1e9"), provenance=Provenance(BASE, "tester", "test")
    ).id
    half = len(history) // 2
    for n, step in enumerate(history):
        if n == half:
            portfolio.amend_ministry(
                "MTEST", actor="tester", name="Ministère des épreuves", alias=Alias("MTX2")
            )
            prov = Provenance(BASE + timedelta(days=backdate), "tester", "test", "fix", True)
            with suppress(DomainError):  # a history may have closed the project
                portfolio.revise_details(ids[5], {"ministry_code": "MTX2"}, provenance=prov)
            prov = Provenance(BASE + timedelta(days=backdate // 2), "tester", "test", "fix", True)
            with suppress(DomainError):
                portfolio.reestimate_cost(ids[4], Decimal("150000.01"), provenance=prov)
        pool = ids[:4] if n % 2 else [ids[4], ids[5], ids[2], ids[1]]
        apply_step(portfolio, pool, programme, step)
        if step.catch_up:
            catch_up(services.db, portfolio, PROJECTION, batch_size=step.catch_up)
    catch_up(services.db, portfolio, PROJECTION, batch_size=3)


def check_summaries(services: Services, probes: list[int]) -> None:
    """On each probe date, the materialised summary is the per-project one, exactly."""
    with services.db.transaction(write=False) as tx:
        for offset in probes:
            as_of = BASE + timedelta(days=offset)
            expected = portfolio_summary(queries.states_at(tx, as_of, None, light=True))
            assert materialised_summary(tx, as_of) == expected, as_of
            assert queries.summary(tx, as_of, None) == expected


def _value(name: str, raw: Any) -> Any:
    if name in MONEY_SUMS:
        return Decimal(str(raw))
    if name in SUMS:
        return int(raw)
    return as_date(raw) if name in {"valid_from", "valid_to", "day", "month"} else raw


def figure_tables(tx: Tx) -> dict[str, set[tuple[Any, ...]]]:
    """The three tables' rows as comparable values, leaving out the delta and checkpoint
    rows that add nothing (the incremental path may leave cancelled ones behind)."""
    found: dict[str, set[tuple[Any, ...]]] = {}
    for name, table in (
        ("spans", LIVE.spans),
        ("deltas", LIVE.figure_deltas),
        ("checkpoints", LIVE.figure_checkpoints),
    ):
        rows = tx.fetch(sql.SQL("SELECT * FROM {}").format(table))
        values = {tuple((k, _value(k, v)) for k, v in sorted(r.items())) for r in rows}
        if name != "spans":
            values = {r for r in values if any(v for k, v in r if k in SUMS)}
        found[name] = values
    return found


def same_checkpoints(a: set[tuple[Any, ...]], b: set[tuple[Any, ...]]) -> bool:
    """Equal over the months both cover (the incremental path never shrinks its range)."""

    def months(rows: set[tuple[Any, ...]]) -> set[date]:
        return {dict(r)["month"] for r in rows}

    common = months(a) & months(b)
    return {r for r in a if dict(r)["month"] in common} == {
        r for r in b if dict(r)["month"] in common
    }


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    history=histories,
    probes=probe_days,
    backdate=st.integers(min_value=0, max_value=900),
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_materialised_summary_is_the_per_project_summary_before_and_after_a_rebuild(
    backend: str, history: list[Step], probes: list[int], backdate: int
) -> None:
    with store(backend) as services:
        record(services, history, backdate)
        check_summaries(services, probes)
        with services.db.transaction(write=False) as tx:
            incremental = figure_tables(tx)
        rebuild(services.db, services.portfolio)
        check_summaries(services, probes)
        with services.db.transaction(write=False) as tx:
            rebuilt = figure_tables(tx)
        assert rebuilt["spans"] == incremental["spans"]
        assert rebuilt["deltas"] == incremental["deltas"]
        assert same_checkpoints(rebuilt["checkpoints"], incremental["checkpoints"])


def test_sql_and_python_round_every_drift_alike_ties_included(pg_url: str) -> None:
    """A rebuild's SQL drifts equal the projector's, or the two paths would add different
    sums: 83,886.08 EUR is 2**23 cents, whose drifts end in a 5 at the 21st decimal."""
    cases: list[tuple[Decimal | int, Decimal | int]] = [(1, 2**23), (-3, 2**23), (1, 5**23)]
    cases += [(7, 3), (-7, 3), (0, 5)]
    cases += [(Decimal("-123.45"), Decimal("98765.43")), (Decimal("0.01"), Decimal("83886.08"))]
    cases += [(n * 37 - 900, n * 53 + 1) for n in range(200)]
    with psycopg.connect(pg_url) as conn:
        for part, whole in cases:
            query = sql.SQL("SELECT {}").format(
                drift_sql(f"'{part}'::numeric", f"'{whole}'::numeric")
            )
            row = conn.execute(query).fetchone()
            assert row is not None and row[0] == drift_pct(part, whole), (part, whole)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_store_made_before_the_figure_tables_gets_them_at_start_up(backend: str) -> None:
    history = [
        Step(n % 4, kind, (n * 97) % 1300, (Decimal(5000 + n), "Déploiement", "Red", True), 0)
        for n, kind in enumerate(["cost", "schedule", "phase", "rebaseline", "cost"] * 4)
    ]
    with store(backend) as services:
        record(services, history, backdate=200)
        with services.db.transaction() as tx:
            for table in (LIVE.spans, LIVE.figure_deltas, LIVE.figure_checkpoints):
                tx.execute(sql.SQL("DROP TABLE {}").format(table))
        setup_all(services.db)
        check_summaries(services, [0, 45, 400, 401, 800, 1200, 1700])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_store_whose_spans_predate_the_compared_fields_gets_them_at_start_up(
    backend: str,
) -> None:
    history = [
        Step(n % 4, kind, (n * 97) % 1300, (Decimal(5000 + n), "Déploiement", "Red", True), 0)
        for n, kind in enumerate(["cost", "schedule", "phase", "rebaseline", "cost"] * 4)
    ]
    windows = [
        (BASE + timedelta(days=a), BASE + timedelta(days=b)) for a, b in [(0, 900), (300, 1700)]
    ]
    later = datetime.now(UTC) + timedelta(days=1)

    def changes_now_and_as_known_later() -> list[tuple[dict[str, Any], dict[str, Any]]]:
        with services.db.transaction(write=False) as tx:
            return [
                (
                    queries.changes(tx, None, a, b, None),
                    queries.changes(tx, None, a, b, later),  # looked up per project
                )
                for a, b in windows
            ]

    with store(backend) as services:
        record(services, history, backdate=200)
        with services.db.transaction() as tx:
            for column in SPAN_COMPARED:  # the spans as an earlier version made them
                tx.execute(
                    sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(
                        LIVE.spans, sql.Identifier(column)
                    )
                )
        setup_all(services.db)
        services.portfolio.register_project(  # projected into the spans made anew
            provenance=Provenance(BASE + timedelta(days=500), "tester", "test"),
            name="Après la mise à jour",
            ministry_code="MTEST",
            interministerial=False,
            start_date=BASE,
            phase="Cadrage",
            cost=Decimal("1000"),
            planned_end=BASE + timedelta(days=900),
        )
        catch_up(services.db, services.portfolio, PROJECTION, batch_size=3)
        for now, known_later in changes_now_and_as_known_later():
            assert now == known_later
            assert "Après la mise à jour" in [c["name"] for c in now["entered"]]
        check_summaries(services, [0, 45, 400, 401, 800, 1200, 1700])
