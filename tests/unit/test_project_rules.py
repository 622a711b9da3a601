"""Every rule the Project aggregate guards, on the in-memory event store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.application import Portfolio, Provenance
from domain.errors import (
    AlreadyInPortfolio,
    DomainError,
    EffectiveDateNotAllowed,
    FiguresAlreadyWithheld,
    FiguresNotWithheld,
    InvalidValue,
    NarrativeRequired,
    NothingChanged,
    NotInPortfolio,
    PhaseTransitionNotAllowed,
    ProjectIsClosed,
    ProjectNotClosed,
    ProjectNotFound,
    VersionConflict,
)

TODAY = date(2024, 6, 30)
REGISTERED = date(2024, 1, 15)
MARCH = date(2024, 3, 1)


@pytest.fixture
def portfolio() -> Portfolio:
    return Portfolio(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, today=lambda: TODAY)


def prov(on: date = MARCH, narrative: str | None = None, correction: bool = False) -> Provenance:
    return Provenance(effective_date=on, actor="test", narrative=narrative, correction=correction)


@pytest.fixture
def register(portfolio: Portfolio) -> Callable[..., UUID]:
    def register(**details: Any) -> UUID:
        details = {"name": "SI paie", "ministry_code": "MINARM"} | details
        return portfolio.register_project(prov(REGISTERED), **details).id

    return register


def change(
    portfolio: Portfolio, project: UUID, command: str, p: Provenance | None = None, **args: Any
) -> int:
    return portfolio.change_project(project, command, p or prov(), **args).version


# -- registration ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"name": "  "}, "name"),
        ({"ministry_code": ""}, "ministry_code"),
        ({"phase": "Pilotage"}, "phase"),
        ({"cost": Decimal("0")}, "cost"),
        ({"start_date": date(2024, 1, 1), "planned_end": date(2023, 12, 31)}, "planned_end"),
    ],
)
def test_registration_refuses_invalid_details(
    register: Callable[..., UUID], details: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidValue) as refused:
        register(**details)
    assert refused.value.field == field


def test_registration_in_the_future_is_refused(portfolio: Portfolio) -> None:
    with pytest.raises(EffectiveDateNotAllowed):
        portfolio.register_project(prov(date(2024, 7, 1)), name="X", ministry_code="SPM")


def test_a_registered_project_starts_in_its_phase_with_its_cost_as_baseline(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = portfolio.get_project(register(cost=Decimal("100.00"), planned_end=date(2026, 1, 1)))
    assert (project.phase, project.version) == ("Cadrage", 1)
    assert project.baseline_cost == project.current_cost == Decimal("100.00")
    assert project.baseline_end == project.planned_end == date(2026, 1, 1)
    assert project.in_portfolio and not project.closed and not project.figures_withheld


# -- phases ----------------------------------------------------------------------------------
def test_phases_move_forward_one_step_at_a_time(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    for phase in ("Conception / Réalisation", "Expérimentation", "Déploiement", "Terminé"):
        change(portfolio, project, "transition_phase", phase=phase)
    assert portfolio.get_project(project).phase == "Terminé"


def test_a_forward_move_may_skip_phases(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    change(portfolio, project, "transition_phase", phase="Déploiement")
    assert portfolio.get_project(project).phase == "Déploiement"


@pytest.mark.parametrize("narrative", [None, "", "   "])
def test_a_backward_move_needs_a_narrative(
    portfolio: Portfolio, register: Callable[..., UUID], narrative: str | None
) -> None:
    project = register(phase="Déploiement")
    with pytest.raises(PhaseTransitionNotAllowed) as refused:
        change(portfolio, project, "transition_phase", prov(narrative=narrative), phase="Cadrage")
    assert refused.value.field == "narrative"
    assert portfolio.get_project(project).version == 1


def test_a_backward_move_with_a_narrative_is_recorded(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register(phase="Déploiement")
    change(portfolio, project, "transition_phase", prov(narrative="Pilote raté"), phase="Cadrage")
    assert portfolio.get_project(project).phase == "Cadrage"


def test_moving_to_the_current_phase_is_refused(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    with pytest.raises(PhaseTransitionNotAllowed):
        change(portfolio, register(), "transition_phase", phase="Cadrage")


def test_an_unknown_phase_is_refused(portfolio: Portfolio, register: Callable[..., UUID]) -> None:
    with pytest.raises(InvalidValue):
        change(portfolio, register(), "transition_phase", phase="Recette")


# -- amounts ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "amount",
    [
        Decimal("0"),
        Decimal("-1.00"),
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("1.005"),
        Decimal("1e15"),
        12.5,
    ],
)
def test_amounts_must_be_positive_decimals_with_at_most_two_places(
    portfolio: Portfolio, register: Callable[..., UUID], amount: Any
) -> None:
    project = register()
    with pytest.raises(InvalidValue) as refused:
        change(portfolio, project, "reestimate_cost", amount=amount)
    assert refused.value.field == "amount"
    assert portfolio.get_project(project).version == 1


def test_trailing_zeros_beyond_the_cents_are_accepted(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    change(portfolio, project, "reestimate_cost", amount=Decimal("12.500"))
    assert portfolio.get_project(project).current_cost == Decimal("12.50")


def test_the_first_cost_estimate_becomes_the_baseline(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    change(portfolio, project, "reestimate_cost", amount=Decimal("10.00"))
    change(portfolio, project, "reestimate_cost", amount=Decimal("15.00"))
    state = portfolio.get_project(project)
    assert (state.baseline_cost, state.current_cost) == (Decimal("10.00"), Decimal("15.00"))


# -- effective dates -------------------------------------------------------------------------
def test_an_effective_date_in_the_future_is_refused(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    with pytest.raises(EffectiveDateNotAllowed):
        change(portfolio, register(), "report_status", prov(date(2024, 7, 1)), rating="Green")


def test_an_effective_date_of_today_is_accepted(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    assert change(portfolio, register(), "report_status", prov(TODAY), rating="Green") == 2


def test_a_date_before_registration_needs_a_correction_with_a_narrative(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    early = date(2023, 12, 1)
    with pytest.raises(EffectiveDateNotAllowed):
        change(portfolio, project, "report_status", prov(early), rating="Green")
    with pytest.raises(NarrativeRequired):
        change(portfolio, project, "report_status", prov(early, correction=True), rating="Green")
    p = prov(early, narrative="Édition 2023", correction=True)
    assert change(portfolio, project, "report_status", p, rating="Green") == 2
    assert portfolio.project_events(project)[-1].correction is True  # type: ignore[attr-defined]


# -- ratings, schedule, rebaseline ------------------------------------------------------------
def test_a_red_rating_needs_a_narrative(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    with pytest.raises(NarrativeRequired):
        change(portfolio, project, "report_status", rating="Red")
    change(portfolio, project, "report_status", prov(narrative="Éditeur défaillant"), rating="Red")
    change(portfolio, project, "report_status", rating="Amber/Red")
    assert portfolio.get_project(project).rating == "Amber/Red"


def test_an_unknown_rating_is_refused(portfolio: Portfolio, register: Callable[..., UUID]) -> None:
    with pytest.raises(InvalidValue):
        change(portfolio, register(), "report_status", rating="Purple")


def test_a_planned_end_before_the_start_is_refused(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register(start_date=date(2024, 1, 1))
    with pytest.raises(InvalidValue):
        change(portfolio, project, "reestimate_schedule", planned_end=date(2023, 6, 1))
    change(portfolio, project, "reestimate_schedule", planned_end=date(2026, 6, 1))
    assert portfolio.get_project(project).baseline_end == date(2026, 6, 1)


@pytest.mark.parametrize(
    "args",
    [
        {"baseline_cost": None, "baseline_end": None, "approver": "DINUM", "reason": "x"},
        {"baseline_cost": Decimal("-1"), "baseline_end": None, "approver": "DINUM", "reason": "x"},
        {"baseline_cost": Decimal("5"), "baseline_end": None, "approver": " ", "reason": "x"},
        {"baseline_cost": Decimal("5"), "baseline_end": None, "approver": "DINUM", "reason": ""},
    ],
)
def test_a_rebaseline_needs_a_baseline_an_approver_and_a_reason(
    portfolio: Portfolio, register: Callable[..., UUID], args: dict[str, Any]
) -> None:
    with pytest.raises(InvalidValue):
        change(portfolio, register(), "rebaseline", **args)


def test_a_rebaseline_replaces_the_baseline_only(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register(cost=Decimal("100.00"))
    change(portfolio, project, "reestimate_cost", amount=Decimal("150.00"))
    args: dict[str, Any] = {
        "baseline_cost": Decimal("140.00"),
        "baseline_end": None,
        "approver": "CIN",
        "reason": "x",
    }
    change(portfolio, project, "rebaseline", **args)
    state = portfolio.get_project(project)
    assert (state.baseline_cost, state.current_cost) == (Decimal("140.00"), Decimal("150.00"))


# -- details, figures, portfolio membership ---------------------------------------------------
def test_details_revisions_refuse_unknown_blank_or_unchanged_details(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    with pytest.raises(InvalidValue):
        change(portfolio, project, "revise_details", changes={"colour": "blue"})
    with pytest.raises(InvalidValue):
        change(portfolio, project, "revise_details", changes={"name": " "})
    with pytest.raises(NothingChanged):
        change(portfolio, project, "revise_details", changes={"name": "SI paie"})
    change(
        portfolio, project, "revise_details", changes={"name": "SI paie", "ministry_name": "Armées"}
    )
    [*_, revised] = portfolio.project_events(project)
    assert revised.changes == {"ministry_name": "Armées"}  # type: ignore[attr-defined]


def test_figures_are_withheld_and_disclosed_once_each(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    with pytest.raises(FiguresNotWithheld):
        change(portfolio, project, "disclose_figures")
    change(portfolio, project, "withhold_figures")
    with pytest.raises(FiguresAlreadyWithheld):
        change(portfolio, project, "withhold_figures")
    change(portfolio, project, "disclose_figures")
    assert not portfolio.get_project(project).figures_withheld


def test_a_project_leaves_and_rejoins_the_portfolio_once_each(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    with pytest.raises(AlreadyInPortfolio):
        change(portfolio, project, "rejoin_portfolio")
    change(portfolio, project, "leave_portfolio")
    with pytest.raises(NotInPortfolio):
        change(portfolio, project, "leave_portfolio")
    change(portfolio, project, "rejoin_portfolio")
    assert portfolio.get_project(project).in_portfolio


# -- closure ---------------------------------------------------------------------------------
CHANGES_AFTER_CLOSURE: list[tuple[str, dict[str, Any]]] = [
    ("transition_phase", {"phase": "Déploiement"}),
    ("reestimate_cost", {"amount": Decimal("1.00")}),
    ("reestimate_schedule", {"planned_end": date(2026, 1, 1)}),
    ("report_status", {"rating": "Green"}),
    (
        "rebaseline",
        {"baseline_cost": Decimal("1"), "baseline_end": None, "approver": "a", "reason": "b"},
    ),
    ("revise_details", {"changes": {"name": "Autre"}}),
    ("withhold_figures", {}),
    ("leave_portfolio", {}),
    ("close", {"outcome": "completed"}),
]


@pytest.mark.parametrize(("command", "args"), CHANGES_AFTER_CLOSURE)
def test_a_closed_project_accepts_only_a_reopening(
    portfolio: Portfolio, register: Callable[..., UUID], command: str, args: dict[str, Any]
) -> None:
    project = register()
    change(portfolio, project, "close", outcome="abandoned")
    with pytest.raises(ProjectIsClosed):
        change(portfolio, project, command, prov(narrative="n"), **args)
    assert portfolio.get_project(project).version == 2


def test_a_reopening_needs_a_narrative_and_a_closed_project(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    with pytest.raises(ProjectNotClosed):
        change(portfolio, project, "reopen", prov(narrative="x"))
    change(portfolio, project, "close", outcome="completed")
    with pytest.raises(NarrativeRequired):
        change(portfolio, project, "reopen")
    change(portfolio, project, "reopen", prov(narrative="Nouvelle tranche"))
    state = portfolio.get_project(project)
    assert not state.closed and state.outcome is None
    change(portfolio, project, "report_status", rating="Green")


def test_an_unknown_outcome_is_refused(portfolio: Portfolio, register: Callable[..., UUID]) -> None:
    with pytest.raises(InvalidValue):
        change(portfolio, register(), "close", outcome="merged")


# -- the application -------------------------------------------------------------------------
def test_a_stale_expected_version_is_refused_and_nothing_is_recorded(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    change(portfolio, project, "report_status", rating="Green")
    with pytest.raises(VersionConflict):
        portfolio.change_project(
            project, "report_status", prov(), expected_version=1, rating="Amber"
        )
    assert len(portfolio.project_events(project)) == 2


def test_an_unknown_project_is_not_found(portfolio: Portfolio) -> None:
    with pytest.raises(ProjectNotFound):
        portfolio.change_project(uuid4(), "report_status", prov(), rating="Green")


def test_every_refusal_is_a_named_domain_error() -> None:
    assert issubclass(PhaseTransitionNotAllowed, DomainError)
    assert NarrativeRequired("x").field == "narrative"
    assert EffectiveDateNotAllowed("x").field == "effective_date"


def test_dates_and_amounts_round_trip_through_the_sqlite_store(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "es.db")}
    writer = Portfolio(env=env, today=lambda: TODAY)
    project = writer.register_project(
        prov(REGISTERED),
        name="X",
        ministry_code="SPM",
        start_date=date(2023, 9, 1),
        cost=Decimal("1.50"),
    ).id
    writer.change_project(
        project, "revise_details", prov(), changes={"start_date": date(2023, 10, 1)}
    )
    reader = Portfolio(env=env, today=lambda: TODAY)
    state = reader.get_project(project)
    assert state.start_date == date(2023, 10, 1) and type(state.start_date) is date
    assert state.registered_on == REGISTERED and state.current_cost == Decimal("1.50")
    assert [e.effective_date for e in reader.project_events(project)] == [REGISTERED, MARCH]  # type: ignore[attr-defined]
