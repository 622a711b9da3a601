"""Every rule of funding programmes and awards, on the in-memory event store."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain.application import Portfolio, Provenance
from domain.errors import (
    CallAlreadyOpen,
    EffectiveDateNotAllowed,
    EnvelopeBelowCommitted,
    EnvelopeOverCommitted,
    InvalidValue,
    NarrativeRequired,
    ProgrammeNotFound,
    ProjectIsClosed,
    ProjectNotFound,
    UnknownCall,
    VersionConflict,
)

TODAY = date(2024, 6, 30)
OPENED = date(2024, 1, 1)


@pytest.fixture
def portfolio() -> Portfolio:
    return Portfolio(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, today=lambda: TODAY)


def prov(on: date = date(2024, 3, 1), **kw: object) -> Provenance:
    return Provenance(effective_date=on, actor="test", **kw)  # type: ignore[arg-type]


@pytest.fixture
def programme(portfolio: Portfolio) -> UUID:
    programme = portfolio.create_programme(
        name="FTAP", envelope=Decimal("1000.00"), provenance=prov(OPENED)
    ).id
    portfolio.open_call(programme, "AAP 1", provenance=prov(OPENED))
    return programme


@pytest.fixture
def project(portfolio: Portfolio) -> UUID:
    return portfolio.register_project(
        provenance=prov(date(2024, 1, 15)), name="SI", ministry_code="SPM"
    ).id


def award(portfolio: Portfolio, programme: UUID, project: UUID, amount: str, **kw: object) -> int:
    return portfolio.award_funding(
        programme,
        project_id=project,
        amount=Decimal(amount),
        provenance=prov(),
        **kw,  # type: ignore[arg-type]
    ).version


@pytest.mark.parametrize(
    ("name", "envelope"), [(" ", Decimal("10")), ("FTAP", Decimal("0")), ("FTAP", Decimal("1.001"))]
)
def test_a_programme_needs_a_name_and_a_positive_envelope(
    portfolio: Portfolio, name: str, envelope: Decimal
) -> None:
    with pytest.raises(InvalidValue):
        portfolio.create_programme(name=name, envelope=envelope, provenance=prov(OPENED))


def test_a_programme_cannot_be_created_in_the_future(portfolio: Portfolio) -> None:
    with pytest.raises(EffectiveDateNotAllowed):
        portfolio.create_programme(
            name="FTAP", envelope=Decimal("1"), provenance=prov(date(2024, 7, 1))
        )


def test_a_call_is_opened_once_and_must_be_named(portfolio: Portfolio, programme: UUID) -> None:
    with pytest.raises(CallAlreadyOpen):
        portfolio.open_call(programme, "AAP 1", provenance=prov())
    with pytest.raises(InvalidValue):
        portfolio.open_call(programme, "  ", provenance=prov())
    portfolio.open_call(programme, "AAP 2", provenance=prov())
    assert portfolio.get_programme(programme).calls == ["AAP 1", "AAP 2"]


def test_an_award_is_recorded_on_the_programme_and_the_project(
    portfolio: Portfolio, programme: UUID, project: UUID
) -> None:
    award(portfolio, programme, project, "400.00", call="AAP 1")
    state = portfolio.get_programme(programme)
    assert (state.committed, state.available) == (Decimal("400.00"), Decimal("600.00"))
    assert state.awards == [{"project_id": project, "amount": Decimal("400.00"), "call": "AAP 1"}]
    assert portfolio.get_project(project).funding_received == Decimal("400.00")


def test_the_envelope_can_be_filled_exactly_but_never_over_committed(
    portfolio: Portfolio, programme: UUID, project: UUID
) -> None:
    award(portfolio, programme, project, "999.99")
    with pytest.raises(EnvelopeOverCommitted) as refused:
        award(portfolio, programme, project, "0.02")
    assert refused.value.field == "amount"
    award(portfolio, programme, project, "0.01")
    assert portfolio.get_programme(programme).available == Decimal("0.00")
    assert portfolio.get_project(project).funding_received == Decimal("1000.00")


@pytest.mark.parametrize("amount", ["0", "-5", "1.005", "NaN"])
def test_an_award_amount_must_be_a_positive_amount_in_cents(
    portfolio: Portfolio, programme: UUID, project: UUID, amount: str
) -> None:
    with pytest.raises(InvalidValue):
        award(portfolio, programme, project, amount)


def test_an_award_in_a_call_that_is_not_open_is_refused(
    portfolio: Portfolio, programme: UUID, project: UUID
) -> None:
    with pytest.raises(UnknownCall) as refused:
        award(portfolio, programme, project, "10.00", call="AAP 9")
    assert refused.value.field == "call"


def test_an_award_refused_by_the_project_leaves_the_programme_untouched(
    portfolio: Portfolio, programme: UUID, project: UUID
) -> None:
    portfolio.close_project(project, "abandoned", provenance=prov())
    with pytest.raises(ProjectIsClosed):
        award(portfolio, programme, project, "10.00")
    state = portfolio.get_programme(programme)
    assert (state.version, state.committed) == (2, Decimal(0))


def test_an_award_to_an_unknown_project_leaves_the_programme_untouched(
    portfolio: Portfolio, programme: UUID
) -> None:
    with pytest.raises(ProjectNotFound):
        award(portfolio, programme, uuid4(), "10.00")
    assert portfolio.get_programme(programme).version == 2


def test_an_award_dated_before_the_programme_needs_a_correction(
    portfolio: Portfolio, programme: UUID, project: UUID
) -> None:
    early = date(2023, 12, 1)
    args = {"project_id": project, "amount": Decimal("1.00")}
    with pytest.raises(EffectiveDateNotAllowed):
        portfolio.award_funding(programme, provenance=prov(early), **args)  # type: ignore[arg-type]
    with pytest.raises(NarrativeRequired):
        portfolio.award_funding(programme, provenance=prov(early, correction=True), **args)  # type: ignore[arg-type]


def test_a_stale_programme_version_is_refused(
    portfolio: Portfolio, programme: UUID, project: UUID
) -> None:
    with pytest.raises(VersionConflict):
        award(portfolio, programme, project, "1.00", expected_version=1)
    assert award(portfolio, programme, project, "1.00", expected_version=2) == 3


def test_an_unknown_programme_is_not_found(portfolio: Portfolio, project: UUID) -> None:
    with pytest.raises(ProgrammeNotFound):
        award(portfolio, uuid4(), project, "1.00")


def test_an_award_is_checked_against_the_envelope_in_force_on_its_date(
    portfolio: Portfolio, programme: UUID, project: UUID
) -> None:
    portfolio.revise_envelope(
        programme,
        provenance=prov(date(2024, 5, 1)),
        envelope=Decimal("1500.00"),
        reason="finance law",
    )
    with pytest.raises(EnvelopeOverCommitted) as refused:
        award(portfolio, programme, project, "1200.00")  # effective 1 March: 1000 in force
    assert "2024-03-01" in refused.value.message
    portfolio.award_funding(
        programme, provenance=prov(date(2024, 5, 2)), project_id=project, amount=Decimal("1200.00")
    )
    state = portfolio.get_programme(programme)
    assert (state.envelope_on(date(2024, 4, 30)), state.envelope) == (
        Decimal("1000.00"),
        Decimal("1500.00"),
    )


def test_an_award_that_a_later_cut_cannot_hold_is_refused_and_so_is_the_cut(
    portfolio: Portfolio, programme: UUID, project: UUID
) -> None:
    portfolio.revise_envelope(
        programme, provenance=prov(date(2024, 4, 1)), envelope=Decimal("500.00"), reason="cut"
    )
    with pytest.raises(EnvelopeOverCommitted):
        award(portfolio, programme, project, "600.00")  # fits on 1 March, not from 1 April
    award(portfolio, programme, project, "400.00")
    with pytest.raises(EnvelopeBelowCommitted) as refused:
        portfolio.revise_envelope(
            programme,
            provenance=prov(date(2024, 5, 1)),
            envelope=Decimal("300.00"),
            reason="cut again",
        )
    assert "below what is already committed" in refused.value.message
    assert refused.value.field == "envelope"


def test_engaged_and_disbursed_money_never_commit_the_envelope(
    portfolio: Portfolio, programme: UUID, project: UUID
) -> None:
    award(portfolio, programme, project, "900.00")
    for kind in ("engaged", "disbursed"):
        portfolio.record_funding(
            programme, provenance=prov(), project_id=project, amount=Decimal("3000.00"), kind=kind
        )
    state = portfolio.get_programme(programme)
    assert state.committed == Decimal("900.00")
    assert [f["kind"] for f in state.other_funding] == ["engaged", "disbursed"]
    assert portfolio.get_project(project).funding_received == Decimal("900.00")
