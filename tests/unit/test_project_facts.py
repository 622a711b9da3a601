"""A project's facts are declared once: the aggregate, the read model and its table follow."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

import pytest
from psycopg import sql

from domain.application import Portfolio, Provenance
from domain.project import Project
from domain.project_facts import (
    DETAIL_FIELDS,
    FACTS,
    IN_EXTRA,
    Fact,
    ProjectFacts,
    column,
    fact_of,
    facts_of,
)
from projections.db import Tx, ident
from projections.project_states import STATE_ROWS, StateRows, state_from_row, state_row
from projections.schema import LIVE, STATE_COLUMNS, create_tables, state_column_types
from projections.state import ProjectState, fold

NAMES = {f.name for f in FACTS}
RECORDED = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
TODAY = date(2025, 1, 1)


class WithRisk(ProjectFacts):
    """The declaration, as it would be with two more facts."""

    risk_owner: str | None
    risk_score: Annotated[Decimal | None, column("risk")]
    tags: Annotated[list[str], IN_EXTRA]


def a_busy_project() -> tuple[Portfolio, Project]:
    """A project whose every fact differs from its registration default."""
    portfolio = Portfolio(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, today=lambda: TODAY)
    on = Provenance(date(2024, 1, 10), "tester", "test")
    pid = portfolio.register_project(
        provenance=on,
        name="SI paie",
        ministry_code="MINARM",
        ministry_name="Armées",
        description="Paie des militaires «Source Solde»",
        functional_zone="RH",
        programmes=["P212"],
        links=["https://example.org/si"],
        start_date=date(2023, 9, 1),
        cost=Decimal("100.50"),
        planned_end=date(2026, 1, 1),
    ).id
    later = dataclasses.replace(on, effective_date=date(2024, 3, 1), narrative="because")
    portfolio.reestimate_cost(pid, Decimal("150.00"), provenance=later)
    portfolio.report_status(pid, "Red", provenance=later)
    portfolio.withhold_figures(pid, provenance=later)
    portfolio.leave_portfolio(pid, provenance=later)
    portfolio.close_project(pid, "abandoned", provenance=later)
    return portfolio, portfolio.get_project(pid)


def sqlite_round_trip(rows: StateRows, state: ProjectState) -> dict[str, Any]:
    """Write `state` to a fresh SQLite states table made from `rows.facts`, read it back."""
    tx = Tx("sqlite", sqlite3.connect(":memory:"))
    tx.execute(
        sql.SQL("CREATE TABLE {} ({})").format(
            ident("states"), state_column_types(rows.facts, "sqlite")
        )
    )
    tx.copy_rows(ident("states"), rows.columns, [rows.row(state, RECORDED)])
    [row] = tx.fetch("SELECT * FROM states")
    return row


def test_the_aggregate_holds_every_declared_fact_and_no_other() -> None:
    portfolio, project = a_busy_project()
    registration = portfolio.project_events(project.id)[0]
    for holder in (project, registration.mutate(None), fold([registration])):
        public = {k for k in vars(holder) if not k.startswith("_")}
        assert public - {"project_id", "version", "valid_from"} == NAMES


def test_the_read_models_fold_holds_every_declared_fact_and_no_other() -> None:
    portfolio, project = a_busy_project()
    state = fold(portfolio.project_events(project.id))
    assert state is not None
    assert set(state.facts()) - {"project_id"} == NAMES
    assert {name: getattr(state, name) for name in NAMES} == {
        name: getattr(project, name) for name in NAMES
    }


def test_a_registration_carries_every_detail_a_revision_may_change() -> None:
    payload = {f.name for f in dataclasses.fields(Project.Registered)}
    assert set(DETAIL_FIELDS) <= payload
    assert DETAIL_FIELDS == tuple(f.name for f in FACTS[: len(DETAIL_FIELDS)])


def test_every_fact_has_its_column_or_a_place_in_extra() -> None:
    kept = {f.column for f in FACTS if f.column is not None}
    assert kept | {"project_id", "valid_from", "recorded_from", "recorded_to", "version"} | {
        "extra"
    } == set(STATE_COLUMNS)
    assert len(STATE_COLUMNS) == len(set(STATE_COLUMNS))
    assert {f.name for f in FACTS if f.column is None} == {"description", "programmes", "links"}
    assert next(f for f in FACTS if f.name == "current_cost").column == "cost"


def test_the_states_table_has_exactly_the_mapped_columns() -> None:
    tx = Tx("sqlite", sqlite3.connect(":memory:"))
    create_tables(tx, LIVE)
    columns = [r["name"] for r in tx.fetch("PRAGMA table_info(pr_states)")]
    assert tuple(columns) == STATE_COLUMNS == STATE_ROWS.columns


def test_a_state_round_trips_through_its_row_and_the_sqlite_table() -> None:
    portfolio, project = a_busy_project()
    state = fold(portfolio.project_events(project.id))
    assert state is not None
    assert len(state_row(state, RECORDED)) == len(STATE_COLUMNS)
    assert (
        state_from_row(dict(zip(STATE_COLUMNS, state_row(state, RECORDED), strict=True))) == state
    )
    back = state_from_row(sqlite_round_trip(STATE_ROWS, state))
    assert back == state and back.version == state.version and back.valid_from == state.valid_from
    assert type(back.current_cost) is Decimal and type(back.registered_on) is date


def test_a_fact_added_to_the_declaration_reaches_the_columns_the_rows_and_the_table() -> None:
    facts = facts_of(WithRisk)
    assert facts[: len(FACTS)] == FACTS
    rows = StateRows(facts)
    assert rows.columns[-3:] == ("risk_owner", "risk", "extra")
    portfolio, project = a_busy_project()
    state = fold(portfolio.project_events(project.id))
    assert state is not None
    state.risk_owner, state.risk_score, state.tags = "DINUM", Decimal("0.75"), ["audit"]  # type: ignore[attr-defined]
    back = rows.state(sqlite_round_trip(rows, state))
    assert (back.risk_owner, back.risk_score, back.tags) == ("DINUM", Decimal("0.75"), ["audit"])  # type: ignore[attr-defined]
    assert back == state


def test_a_fact_of_a_type_the_read_model_cannot_store_is_refused_at_declaration() -> None:
    with pytest.raises(TypeError, match="weights"):
        fact_of("weights", dict[str, int])
    assert fact_of("x", date | None) == Fact("x", "date", True, "x")
