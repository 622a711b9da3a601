"""The cheap deep copy of a cached aggregate is a deep copy: same state, nothing mutable shared."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal

from domain.application import Portfolio, Provenance
from domain.copying import CheapDeepCopy
from domain.project import Project

TODAY = date(2024, 6, 30)


def _project() -> Project:
    portfolio = Portfolio(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, today=lambda: TODAY)
    prov = Provenance(effective_date=date(2024, 1, 15), actor="test")
    result = portfolio.register_project(
        provenance=prov,
        name="SI paie",
        ministry_code="MINARM",
        programmes=["P1", "P2"],
        links=["https://example.org/a"],
        cost=Decimal("1000.00"),
    )
    later = Provenance(effective_date=date(2024, 3, 1), actor="test")
    portfolio.reestimate_cost(result.id, Decimal("1200.00"), provenance=later)
    return portfolio.get_project(result.id)


def test_same_state_as_the_library_deepcopy() -> None:
    project = _project()
    cheap = copy.deepcopy(project)
    assert type(cheap) is Project
    full = CheapDeepCopy.__new__(Project)
    full.__dict__.update(copy.deepcopy(project.__dict__))  # what deepcopy made before
    assert cheap.__dict__ == full.__dict__
    assert cheap.version == project.version and cheap.current_cost == Decimal("1200.00")


def test_nothing_mutable_is_shared() -> None:
    project = _project()
    cheap = copy.deepcopy(project)
    assert cheap is not project
    for name, value in project.__dict__.items():
        if isinstance(value, list | dict | set):
            assert cheap.__dict__[name] is not value, name
    cheap.programmes.append("P3")
    cheap.links.clear()
    assert project.programmes == ["P1", "P2"] and project.links == ["https://example.org/a"]


def test_other_values_go_through_deepcopy() -> None:
    project = _project()
    project.__dict__["nested"] = {"a": [1, [2]]}  # not a shape the aggregates have today
    cheap = copy.deepcopy(project)
    assert cheap.__dict__["nested"] == {"a": [1, [2]]}
    assert cheap.__dict__["nested"]["a"][1] is not project.__dict__["nested"]["a"][1]


def test_snapshot_from_the_saved_aggregate_is_the_rebuilt_state() -> None:
    """At the snapshot interval the snapshot is taken from the aggregate just saved: it
    holds the state the library rebuilds from the stored events at that version."""
    from domain.application import SNAPSHOT_INTERVAL

    env = {"PERSISTENCE_MODULE": "eventsourcing.popo", "IS_SNAPSHOTTING_ENABLED": "y"}
    portfolio = Portfolio(env=env, today=lambda: TODAY)
    prov = Provenance(effective_date=date(2024, 3, 1), actor="test")
    result = portfolio.register_project(
        provenance=Provenance(effective_date=date(2024, 1, 15), actor="test"),
        name="SI paie",
        ministry_code="MINARM",
        programmes=["P1"],
    )
    for n in range(2 * SNAPSHOT_INTERVAL + 3):
        portfolio.reestimate_cost(result.id, Decimal(f"{1000 + n}.00"), provenance=prov)
    assert portfolio.snapshots is not None
    snapshots = list(portfolio.snapshots.get(result.id))
    assert [s.originator_version for s in snapshots] == [SNAPSHOT_INTERVAL, 2 * SNAPSHOT_INTERVAL]
    for snapshot in snapshots:
        rebuilt = portfolio.repository.get(result.id, version=snapshot.originator_version)
        expected = dict(vars(rebuilt))
        for name in ("_id", "_version", "_pending_events"):
            expected.pop(name)
        assert snapshot.state == expected
    assert portfolio.get_project(result.id).current_cost == Decimal(f"{1002 + 2 * 50}.00")
