"""A rebuild writes, row for row, the tables the incremental catch-up wrote (on PostgreSQL), and
leaves the live tables' indexes under their own names (on both dialects)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from domain.application import Provenance
from projections.catchup import consumer_lock
from projections.db import ident
from projections.rebuild import rebuild, replay
from projections.registry import catch_up
from projections.schema import LIVE, PROJECTION, Tables, create_tables
from service.bootstrap import Services, bootstrap, store_opener
from service.config import Settings
from tests.histories import BASE, TODAY, Step, apply_step, histories, register_projects

CHECK = Tables("__check")


def every_row(services: Services, tables: Tables = LIVE) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the project-states projection, sorted."""
    with services.db.transaction(write=False) as tx:
        return {
            base: sorted(
                tuple(row.values())
                for row in tx.fetch(sql.SQL("SELECT * FROM {}").format(ident(tables.name(base))))
            )
            for base in ("pr_states", "pr_events", "pr_projects", "pr_ministry_codes")
        }


def pg_services(pg_url: str, schema: str) -> Services:
    services = bootstrap(Settings(database_url=pg_url, database_schema=schema), today=lambda: TODAY)
    services.after_commit = lambda position: None  # catch up only where the test says
    return services


def drop(pg_url: str, schema: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def record(
    services: Services, history: list[Step], projects: int = 4, ids: list[UUID] | None = None
) -> list[UUID]:
    """Register projects (unless `ids` are given), then apply the history, catching up
    where each step says; return the projects."""
    portfolio = services.portfolio
    if ids is None:
        ids = [i for _ in range(projects // 4) for i in register_projects(portfolio)]
    programme = portfolio.create_programme(
        name="FTAP", envelope=Decimal("1e9"), provenance=Provenance(BASE, "tester", "test")
    ).id
    for n, step in enumerate(history):
        apply_step(portfolio, [ids[(step.project + 4 * n) % len(ids)]] * 4, programme, step)
        if step.catch_up:
            catch_up(services.db, portfolio, PROJECTION, batch_size=step.catch_up)
    return ids


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(history=histories, batch=st.sampled_from([1, 3, 1000]))
def test_a_rebuild_writes_the_rows_of_the_incremental_catch_up(
    pg_url: str, history: list[Step], batch: int
) -> None:
    schema = f"t_rows_{uuid.uuid4().hex[:10]}"
    services = pg_services(pg_url, schema)
    try:
        record(services, history)
        catch_up(services.db, services.portfolio, PROJECTION, batch_size=batch)
        incremental = every_row(services)
        rebuild(services.db, services.portfolio)
        assert every_row(services) == incremental
    finally:
        services.close()
        drop(pg_url, schema)


def steady_history(count: int) -> list[Step]:
    """A long deterministic history, a fifth of it backdated, with same-day events."""
    kinds = ["cost", "schedule", "phase", "withhold", "disclose", "cost", "award", "status"]
    return [
        Step(
            n % 4,
            kinds[n % len(kinds)],
            (n * 37) % 1400 if n % 5 else (n * 3) % 200,
            (Decimal(1000 + n), "Déploiement", "Amber", n % 2 == 0),
            0,
        )
        for n in range(count)
    ]


def test_a_parallel_rebuild_with_events_arriving_meanwhile_equals_the_catch_up(
    pg_url: str, pg_schema: str
) -> None:
    services = pg_services(pg_url, pg_schema)
    try:
        ids = record(services, steady_history(300), projects=24)
        late = steady_history(40)[::-1]
        seen: list[tuple[int, int]] = []

        def progress(done: int, total: int) -> None:
            if not seen:  # commands keep arriving while the rebuild runs
                record(services, late, ids=ids[:3])
            seen.append((done, total))

        rebuild(
            services.db,
            services.portfolio,
            progress=progress,
            processes=2,
            open_store=store_opener(services.settings),
        )
        assert seen[-1][0] == seen[-1][1]
        with services.db.transaction() as tx:
            create_tables(tx, CHECK)
        with consumer_lock(services.db, LIVE.tracking_name):
            replay(services.db, services.portfolio, CHECK, batch_size=7)
        assert every_row(services) == every_row(services, CHECK)
        head = services.portfolio.recorder.max_notification_id()
        with services.db.transaction(write=False) as tx:
            tracked = tx.scalar("SELECT position FROM pr_tracking WHERE name = %s", (PROJECTION,))
        assert tracked == head
    finally:
        services.close()


def project_state_indexes(services: Services) -> list[tuple[str, str]]:
    """The project-states tables' indexes: (name, or "key" for a primary key, definition
    with the name left out)."""
    with services.db.transaction(write=False) as tx:
        rows = tx.fetch(
            "SELECT c.relname AS name, i.indisprimary AS key, pg_get_indexdef(i.indexrelid) AS "
            "definition FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE t.relnamespace = current_schema()::regnamespace AND t.relname IN "
            "('pr_states', 'pr_events', 'pr_projects', 'pr_spans', 'pr_figure_deltas', "
            "'pr_figure_checkpoints', 'pr_ministry_codes')"
        )
    return sorted(
        ("key" if r["key"] else r["name"], r["definition"].replace(r["name"], "")) for r in rows
    )


def test_a_store_started_again_after_a_rebuild_builds_no_index_again(
    pg_url: str, pg_schema: str
) -> None:
    services = pg_services(pg_url, pg_schema)
    try:
        record(services, steady_history(40))
        catch_up(services.db, services.portfolio, PROJECTION)
        before = project_state_indexes(services)
        rebuild(services.db, services.portfolio)
        rebuilt = project_state_indexes(services)
    finally:
        services.close()
    again = pg_services(pg_url, pg_schema)  # its set-up creates what is missing
    try:
        assert project_state_indexes(again) == rebuilt == before
    finally:
        again.close()


def sqlite_indexes(services: Services) -> list[tuple[str, str]]:
    """The project-states tables' named indexes on SQLite: (name, table)."""
    with services.db.transaction(write=False) as tx:
        rows = tx.fetch_tuples(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' "
            "AND name NOT LIKE 'sqlite_autoindex_%' AND tbl_name IN "
            "('pr_states', 'pr_events', 'pr_projects', 'pr_spans')"
        )
    return sorted((str(name), str(table)) for name, table in rows)


def test_on_sqlite_a_rebuild_leaves_the_live_index_names_and_no_duplicate(
    tmp_path: Any,
) -> None:
    """SQLite cannot rename an index: the swap rebuilds the live ones under their names, so
    that the next start does not build each a second time beside the rebuild's."""

    def start() -> Services:
        url = f"sqlite:///{tmp_path / 'p.sqlite3'}"
        services = bootstrap(Settings(database_url=url), today=lambda: TODAY)
        services.after_commit = lambda position: None
        return services

    services = start()
    try:
        record(services, steady_history(20))
        catch_up(services.db, services.portfolio, PROJECTION)
        before = sqlite_indexes(services)
        assert before and all(name.endswith("_live") for name, _ in before)
        rebuild(services.db, services.portfolio)
        assert sqlite_indexes(services) == before
        rows = every_row(services)
    finally:
        services.close()
    again = start()
    try:
        assert sqlite_indexes(again) == before
        assert every_row(again) == rows
    finally:
        again.close()
