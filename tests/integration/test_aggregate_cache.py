"""The aggregate cache and snapshots are invisible: every process sees every other's commands,
a cold load from a snapshot gives the state a full replay gives, and snapshots are no events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from domain.application import SNAPSHOT_INTERVAL, Portfolio, Provenance
from domain.errors import ProjectIsClosed, VersionConflict
from domain.subscription import Rule
from projections import chain_verify
from projections.registry import catch_up_all
from service.bootstrap import Services
from service.config import Settings

TODAY = date(2024, 6, 30)
PROV = Provenance(effective_date=date(2024, 3, 1), actor="test")


def _register(portfolio: Portfolio) -> UUID:
    prov = replace(PROV, effective_date=date(2024, 1, 15))
    return portfolio.register_project(provenance=prov, name="Cache", ministry_code="MJ").id


def _estimate(portfolio: Portfolio, pid: UUID, n: int, expected: int | None = None) -> int:
    result = portfolio.reestimate_cost(
        pid, Decimal(f"{1000 + n}.00"), provenance=PROV, expected_version=expected
    )
    return result.version


def _state(aggregate: Any) -> dict[str, Any]:
    return dict(vars(aggregate))


def test_each_process_sees_the_commands_of_the_other(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    a = make_services(settings, today=lambda: TODAY).portfolio
    b = make_services(settings, today=lambda: TODAY).portfolio
    assert a.repository.cache is not None and b.repository.cache is not None
    pid = _register(a)
    version = _estimate(b, pid, 0, expected=1)  # b caches the project
    for n in range(1, 6):  # alternate, each with the version the other one recorded
        version = _estimate(a if n % 2 else b, pid, n, expected=version)
    assert version == 7
    assert a.get_project(pid).current_cost == b.get_project(pid).current_cost == Decimal("1005.00")
    with pytest.raises(VersionConflict):  # a stale version is still refused by either
        _estimate(b, pid, 9, expected=6)


def test_a_cold_load_from_a_snapshot_is_the_state_a_full_replay_gives(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    writer = make_services(settings, today=lambda: TODAY).portfolio
    pid = _register(writer)
    events = 2 * SNAPSHOT_INTERVAL + 7
    for n in range(events - 1):
        if n % 10 == 3:
            writer.report_status(pid, "Amber", provenance=PROV)
        else:
            _estimate(writer, pid, n)
    programme = writer.create_programme(
        name="France 2030", envelope=Decimal("9e6"), provenance=PROV
    ).id
    for n in range(SNAPSHOT_INTERVAL + 1):
        writer.open_call(programme, f"call {n}", provenance=PROV)
    writer.award_funding(
        programme, project_id=pid, amount=Decimal("1000"), call="call 3", provenance=PROV
    )
    rule = Rule("cost", ">", Decimal("5"), None, "all", None)
    channel = {"channel": "email", "target": "ops@example.org"}
    sub = writer.create_subscription(owner="t1", rule=rule, channel=channel, actor="x").id
    for n in range(SNAPSHOT_INTERVAL):
        changed = Rule("cost", ">", Decimal(n), None, "all", None)
        writer.change_subscription(sub, actor="x", rule=changed)

    assert writer.snapshots is not None
    taken = [s.originator_version for s in writer.snapshots.get(pid)]
    assert taken == [SNAPSHOT_INTERVAL, 2 * SNAPSHOT_INTERVAL]
    cold = make_services(settings, today=lambda: TODAY).portfolio  # an empty cache
    replay = make_services(replace(settings, aggregate_snapshots=False, aggregate_cache_size=0))
    assert replay.portfolio.snapshots is None and replay.portfolio.repository.cache is None
    for load in ("get_project", "get_programme", "get_subscription"):
        aggregate_id = {"get_project": pid, "get_programme": programme, "get_subscription": sub}
        from_snapshot = getattr(cold, load)(aggregate_id[load])
        replayed = getattr(replay.portfolio, load)(aggregate_id[load])
        assert _state(from_snapshot) == _state(replayed), load
    assert cold.get_project(pid).version == events + 1
    assert cold.get_project(pid).funding_received == Decimal("1000")


def test_snapshots_are_not_in_the_log_nor_in_the_hash_chain(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    services = make_services(settings, today=lambda: TODAY)
    portfolio = services.portfolio
    seeded = portfolio.recorder.max_notification_id() or 0  # the reference data
    pid = _register(portfolio)
    for n in range(SNAPSHOT_INTERVAL + 4):
        _estimate(portfolio, pid, n)
    assert portfolio.snapshots is not None and list(portfolio.snapshots.get(pid))
    recorded = SNAPSHOT_INTERVAL + 5
    assert portfolio.recorder.max_notification_id() == seeded + recorded
    notifications = portfolio.recorder.select_notifications(start=0, limit=1000)
    assert all(".Snapshot" not in n.topic for n in notifications)
    catch_up_all(services.db, portfolio)
    report = chain_verify.verify(services.db, portfolio)
    assert report.ok and report.checked == seeded + recorded and report.not_yet_chained == 0
    assert portfolio.project_events(pid)[-1].originator_version == recorded


def test_a_snapshot_that_cannot_be_stored_never_fails_the_command(
    settings: Settings, make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    portfolio = make_services(settings, today=lambda: TODAY).portfolio
    pid = _register(portfolio)
    assert portfolio.snapshots is not None

    def broken(*_: Any, **__: Any) -> None:
        raise OSError("snapshot table unavailable")

    monkeypatch.setattr(portfolio.snapshots, "put", broken)
    for n in range(SNAPSHOT_INTERVAL + 1):
        _estimate(portfolio, pid, n)
    assert portfolio.get_project(pid).version == SNAPSHOT_INTERVAL + 2


def test_a_command_decided_on_a_stale_cache_is_decided_again_on_the_store(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    """Commands take the cached aggregate without reading the store (`cache_first`): every
    answer is still the one the latest state gives, whichever process recorded it."""
    a = make_services(settings, today=lambda: TODAY).portfolio
    b = make_services(settings, today=lambda: TODAY).portfolio
    pid = _register(a)
    assert _estimate(b, pid, 0) == 2  # b caches the project at version 2
    assert _estimate(a, pid, 1) == 3  # a records version 3: b's cache is now stale
    # b's stale cache: the save of version 3 is refused by the store, decided again
    assert _estimate(b, pid, 2) == 4
    assert b.repository.cache is not None
    assert b.repository.cache.get(pid).version == 4  # the save decided again, cached too
    assert b.get_project(pid).current_cost == Decimal("1002.00")
    # If-Match with the version b last saw, while b's cache is stale: still right
    assert _estimate(a, pid, 3) == 5
    assert _estimate(b, pid, 4, expected=5) == 6
    with pytest.raises(VersionConflict):
        _estimate(b, pid, 5, expected=5)
    # a refusal the stale cache would give (b saw it open; a closed it) ...
    a.close_project(pid, "completed", provenance=PROV)
    with pytest.raises(ProjectIsClosed):
        _estimate(b, pid, 6)
    # ... and a command the stale cache would refuse (b saw it closed; a reopened it)
    assert b.get_project(pid).closed
    reopen = replace(PROV, narrative="reopened for the audit")
    a.reopen_project(pid, provenance=reopen)
    assert _estimate(b, pid, 7) == 9
    assert a.get_project(pid).current_cost == b.get_project(pid).current_cost
    assert _state(a.get_project(pid)) == _state(b.get_project(pid))


def test_a_cache_first_save_leaves_the_saved_state_in_the_cache(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    portfolio = make_services(settings, today=lambda: TODAY).portfolio
    pid = _register(portfolio)
    for n in range(3):
        _estimate(portfolio, pid, n)
    cache = portfolio.repository.cache
    assert cache is not None
    cached = cache.get(pid)
    assert cached.version == 4 and cached.current_cost == Decimal("1002.00")
    fresh = portfolio.repository.get(pid, version=4)  # rebuilt from the store
    assert _state(cached) == _state(fresh)


def test_a_cache_first_command_whose_events_committed_is_never_decided_again(
    settings: Settings,
    make_services: Callable[..., Services],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error raised after a cache-first command's events were recorded (here by the
    hook that runs after the commit) is the command's answer: it is not decided a second
    time, which would record its change twice."""
    portfolio = make_services(settings, today=lambda: TODAY).portfolio
    pid = _register(portfolio)
    _estimate(portfolio, pid, 0)  # cached at version 2

    def failing_notify(recordings: Any) -> None:
        raise RuntimeError("after the commit")

    monkeypatch.setattr(portfolio, "_notify", failing_notify)
    with pytest.raises(RuntimeError, match="after the commit"):
        _estimate(portfolio, pid, 1)
    monkeypatch.undo()
    assert portfolio.repository.get(pid).version == 3  # one event recorded, not two
    assert len(list(portfolio.events.get(pid))) == 3
