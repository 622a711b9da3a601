"""Every rule the Project aggregate guards, on the in-memory event store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import DomainEvent

from domain.application import CommandResult, Portfolio, Provenance
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
from domain.programme import FundingProgramme
from domain.project import Project
from domain.subscription import Subscription

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
        return portfolio.register_project(provenance=prov(REGISTERED), **details).id

    return register


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
        portfolio.register_project(provenance=prov(date(2024, 7, 1)), name="X", ministry_code="SPM")


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
        portfolio.transition_phase(project, phase=phase, provenance=prov())
    assert portfolio.get_project(project).phase == "Terminé"


def test_a_forward_move_may_skip_phases(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    portfolio.transition_phase(project, phase="Déploiement", provenance=prov())
    assert portfolio.get_project(project).phase == "Déploiement"


@pytest.mark.parametrize("narrative", [None, "", "   "])
def test_a_backward_move_needs_a_narrative(
    portfolio: Portfolio, register: Callable[..., UUID], narrative: str | None
) -> None:
    project = register(phase="Déploiement")
    with pytest.raises(PhaseTransitionNotAllowed) as refused:
        portfolio.transition_phase(project, phase="Cadrage", provenance=prov(narrative=narrative))
    assert refused.value.field == "narrative"
    assert portfolio.get_project(project).version == 1


def test_a_backward_move_with_a_narrative_is_recorded(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register(phase="Déploiement")
    portfolio.transition_phase(project, phase="Cadrage", provenance=prov(narrative="Pilote raté"))
    assert portfolio.get_project(project).phase == "Cadrage"


def test_moving_to_the_current_phase_is_refused(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    with pytest.raises(PhaseTransitionNotAllowed):
        portfolio.transition_phase(register(), phase="Cadrage", provenance=prov())


def test_an_unknown_phase_is_refused(portfolio: Portfolio, register: Callable[..., UUID]) -> None:
    with pytest.raises(InvalidValue):
        portfolio.transition_phase(register(), phase="Recette", provenance=prov())


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
        portfolio.reestimate_cost(project, amount=amount, provenance=prov())
    assert refused.value.field == "amount"
    assert portfolio.get_project(project).version == 1


def test_trailing_zeros_beyond_the_cents_are_accepted(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    portfolio.reestimate_cost(project, amount=Decimal("12.500"), provenance=prov())
    assert portfolio.get_project(project).current_cost == Decimal("12.50")


def test_the_first_cost_estimate_becomes_the_baseline(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    portfolio.reestimate_cost(project, amount=Decimal("10.00"), provenance=prov())
    portfolio.reestimate_cost(project, amount=Decimal("15.00"), provenance=prov())
    state = portfolio.get_project(project)
    assert (state.baseline_cost, state.current_cost) == (Decimal("10.00"), Decimal("15.00"))


# -- effective dates -------------------------------------------------------------------------
def test_an_effective_date_in_the_future_is_refused(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    with pytest.raises(EffectiveDateNotAllowed):
        portfolio.report_status(register(), rating="Green", provenance=prov(date(2024, 7, 1)))


def test_an_effective_date_of_today_is_accepted(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    assert portfolio.report_status(register(), rating="Green", provenance=prov(TODAY)).version == 2


def test_a_date_before_registration_needs_a_correction_with_a_narrative(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    early = date(2023, 12, 1)
    with pytest.raises(EffectiveDateNotAllowed):
        portfolio.report_status(project, rating="Green", provenance=prov(early))
    with pytest.raises(NarrativeRequired):
        portfolio.report_status(project, rating="Green", provenance=prov(early, correction=True))
    p = prov(early, narrative="Édition 2023", correction=True)
    assert portfolio.report_status(project, rating="Green", provenance=p).version == 2
    assert portfolio.project_events(project)[-1].correction is True  # type: ignore[attr-defined]


# -- ratings, schedule, rebaseline ------------------------------------------------------------
def test_a_red_rating_needs_a_narrative(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    with pytest.raises(NarrativeRequired):
        portfolio.report_status(project, rating="Red", provenance=prov())
    portfolio.report_status(project, rating="Red", provenance=prov(narrative="Éditeur défaillant"))
    portfolio.report_status(project, rating="Amber/Red", provenance=prov())
    assert portfolio.get_project(project).rating == "Amber/Red"


def test_an_unknown_rating_is_refused(portfolio: Portfolio, register: Callable[..., UUID]) -> None:
    with pytest.raises(InvalidValue):
        portfolio.report_status(register(), rating="Purple", provenance=prov())


def test_a_planned_end_before_the_start_is_refused(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register(start_date=date(2024, 1, 1))
    with pytest.raises(InvalidValue):
        portfolio.reestimate_schedule(project, planned_end=date(2023, 6, 1), provenance=prov())
    portfolio.reestimate_schedule(project, planned_end=date(2026, 6, 1), provenance=prov())
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
        portfolio.rebaseline(register(), **args, provenance=prov())


def test_a_rebaseline_replaces_the_baseline_only(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register(cost=Decimal("100.00"))
    portfolio.reestimate_cost(project, amount=Decimal("150.00"), provenance=prov())
    args: dict[str, Any] = {
        "baseline_cost": Decimal("140.00"),
        "baseline_end": None,
        "approver": "CIN",
        "reason": "x",
    }
    portfolio.rebaseline(project, **args, provenance=prov())
    state = portfolio.get_project(project)
    assert (state.baseline_cost, state.current_cost) == (Decimal("140.00"), Decimal("150.00"))


# -- details, figures, portfolio membership ---------------------------------------------------
def test_details_revisions_refuse_unknown_blank_or_unchanged_details(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    with pytest.raises(InvalidValue):
        portfolio.revise_details(project, changes={"colour": "blue"}, provenance=prov())
    with pytest.raises(InvalidValue):
        portfolio.revise_details(project, changes={"name": " "}, provenance=prov())
    with pytest.raises(NothingChanged):
        portfolio.revise_details(project, changes={"name": "SI paie"}, provenance=prov())
    portfolio.revise_details(
        project, {"name": "SI paie", "ministry_name": "Armées"}, provenance=prov()
    )
    [*_, revised] = portfolio.project_events(project)
    assert revised.changes == {"ministry_name": "Armées"}  # type: ignore[attr-defined]


def test_figures_are_withheld_and_disclosed_once_each(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    with pytest.raises(FiguresNotWithheld):
        portfolio.disclose_figures(project, provenance=prov())
    portfolio.withhold_figures(project, provenance=prov())
    with pytest.raises(FiguresAlreadyWithheld):
        portfolio.withhold_figures(project, provenance=prov())
    portfolio.disclose_figures(project, provenance=prov())
    assert not portfolio.get_project(project).figures_withheld


def test_a_project_leaves_and_rejoins_the_portfolio_once_each(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    with pytest.raises(AlreadyInPortfolio):
        portfolio.rejoin_portfolio(project, provenance=prov())
    portfolio.leave_portfolio(project, provenance=prov())
    with pytest.raises(NotInPortfolio):
        portfolio.leave_portfolio(project, provenance=prov())
    portfolio.rejoin_portfolio(project, provenance=prov())
    assert portfolio.get_project(project).in_portfolio


# -- closure ---------------------------------------------------------------------------------
Command = Callable[[Portfolio, UUID, Provenance], CommandResult]
CHANGES_AFTER_CLOSURE: dict[str, Command] = {
    "transition_phase": lambda p, pid, on: p.transition_phase(pid, "Déploiement", provenance=on),
    "reestimate_cost": lambda p, pid, on: p.reestimate_cost(pid, Decimal("1.00"), provenance=on),
    "reestimate_schedule": lambda p, pid, on: p.reestimate_schedule(
        pid, date(2026, 1, 1), provenance=on
    ),
    "report_status": lambda p, pid, on: p.report_status(pid, "Green", provenance=on),
    "rebaseline": lambda p, pid, on: p.rebaseline(
        pid, baseline_cost=Decimal("1"), baseline_end=None, approver="a", reason="b", provenance=on
    ),
    "revise_details": lambda p, pid, on: p.revise_details(pid, {"name": "Autre"}, provenance=on),
    "withhold_figures": lambda p, pid, on: p.withhold_figures(pid, provenance=on),
    "leave_portfolio": lambda p, pid, on: p.leave_portfolio(pid, provenance=on),
    "close": lambda p, pid, on: p.close_project(pid, "completed", provenance=on),
}


@pytest.mark.parametrize("name", CHANGES_AFTER_CLOSURE)
def test_a_closed_project_accepts_only_a_reopening(
    portfolio: Portfolio, register: Callable[..., UUID], name: str
) -> None:
    project = register()
    portfolio.close_project(project, "abandoned", provenance=prov())
    with pytest.raises(ProjectIsClosed):
        CHANGES_AFTER_CLOSURE[name](portfolio, project, prov(narrative="n"))
    assert portfolio.get_project(project).version == 2


def test_a_reopening_needs_a_narrative_and_a_closed_project(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    with pytest.raises(ProjectNotClosed):
        portfolio.reopen_project(project, provenance=prov(narrative="x"))
    portfolio.close_project(project, outcome="completed", provenance=prov())
    with pytest.raises(NarrativeRequired):
        portfolio.reopen_project(project, provenance=prov())
    portfolio.reopen_project(project, provenance=prov(narrative="Nouvelle tranche"))
    state = portfolio.get_project(project)
    assert not state.closed and state.outcome is None
    portfolio.report_status(project, rating="Green", provenance=prov())


def test_an_unknown_outcome_is_refused(portfolio: Portfolio, register: Callable[..., UUID]) -> None:
    with pytest.raises(InvalidValue):
        portfolio.close_project(register(), outcome="merged", provenance=prov())


# -- the application -------------------------------------------------------------------------
def test_a_stale_expected_version_is_refused_and_nothing_is_recorded(
    portfolio: Portfolio, register: Callable[..., UUID]
) -> None:
    project = register()
    portfolio.report_status(project, rating="Green", provenance=prov())
    with pytest.raises(VersionConflict):
        portfolio.report_status(project, "Amber", provenance=prov(), expected_version=1)
    assert len(portfolio.project_events(project)) == 2


def test_an_unknown_project_is_not_found(portfolio: Portfolio) -> None:
    with pytest.raises(ProjectNotFound):
        portfolio.report_status(uuid4(), "Green", provenance=prov())


def test_every_refusal_is_a_named_domain_error() -> None:
    assert issubclass(PhaseTransitionNotAllowed, DomainError)
    assert NarrativeRequired("x").field == "narrative"
    assert EffectiveDateNotAllowed("x").field == "effective_date"


def test_dates_and_amounts_round_trip_through_the_sqlite_store(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "es.db")}
    writer = Portfolio(env=env, today=lambda: TODAY)
    project = writer.register_project(
        provenance=prov(REGISTERED),
        name="X",
        ministry_code="SPM",
        start_date=date(2023, 9, 1),
        cost=Decimal("1.50"),
    ).id
    writer.revise_details(project, {"start_date": date(2023, 10, 1)}, provenance=prov())
    reader = Portfolio(env=env, today=lambda: TODAY)
    state = reader.get_project(project)
    assert state.start_date == date(2023, 10, 1) and type(state.start_date) is date
    assert state.registered_on == REGISTERED and state.current_cost == Decimal("1.50")
    assert [e.effective_date for e in reader.project_events(project)] == [REGISTERED, MARCH]  # type: ignore[attr-defined]


@pytest.mark.parametrize("aggregate", [Project, FundingProgramme, Subscription])
def test_every_event_class_applies_itself(aggregate: type) -> None:
    events = {
        name: cls
        for name, cls in vars(aggregate).items()
        if isinstance(cls, type)
        and issubclass(cls, DomainEvent)
        # the library's default creation event: a Project is created by Registered
        and not (aggregate is Project and name == "Created")
    }
    assert len(events) >= 4
    owners = {name: cls.apply.__qualname__ for name, cls in events.items()}
    assert owners == {name: f"{aggregate.__name__}.{name}.apply" for name in events}
