"""Projectors stay warm between catch-ups of one process, and are dropped as soon as another
consumer moved their projection; the consumer locks use one long-lived connection."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from uuid import UUID

from domain.application import Portfolio, Provenance
from projections import registry
from projections.catchup import lock_key
from projections.db import Database
from projections.registry import catch_up, catch_up_all
from projections.schema import PROJECTION
from service.bootstrap import Services
from service.config import Settings

TODAY = date(2024, 6, 30)


def _estimate(portfolio: Portfolio, pid: UUID, amount: str) -> None:
    prov = Provenance(effective_date=date(2024, 3, 1), actor="test")
    portfolio.reestimate_cost(pid, Decimal(amount), provenance=prov)


def _live_rows(db: Database, pid: UUID) -> list[tuple[str, int, Decimal]]:
    with db.transaction(write=False) as tx:
        rows = tx.fetch(
            "SELECT valid_from, version, cost FROM pr_states WHERE project_id = %s"
            " AND recorded_to IS NULL ORDER BY valid_from",
            (str(pid),),
        )
    return [(str(r["valid_from"]), int(r["version"]), Decimal(str(r["cost"]))) for r in rows]


def test_a_warm_projector_is_dropped_when_another_process_moved_its_projection(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    a = make_services(settings, today=lambda: TODAY)
    b = make_services(settings, today=lambda: TODAY)
    prov = Provenance(effective_date=date(2024, 1, 15), actor="test")
    pid = a.portfolio.register_project(
        provenance=prov, name="Warm", ministry_code="MJ", cost=Decimal(1)
    ).id
    catch_up_all(a.db, a.portfolio)
    warm = registry._WARM[a.db][PROJECTION].projector
    _estimate(a.portfolio, pid, "2")
    catch_up_all(a.db, a.portfolio)
    assert registry._WARM[a.db][PROJECTION].projector is warm  # kept between catch-ups

    _estimate(b.portfolio, pid, "3")  # another process records and projects
    catch_up_all(b.db, b.portfolio)
    _estimate(a.portfolio, pid, "4")  # a's warm projector knows the project as of "2"
    catch_up_all(a.db, a.portfolio)

    assert _live_rows(a.db, pid) == [("2024-01-15", 1, Decimal(1)), ("2024-03-01", 4, Decimal(4))]
    assert registry._WARM[a.db][PROJECTION].projector is not warm


def test_the_consumer_locks_use_one_long_lived_connection(
    pg_settings: Settings, make_services: Callable[..., Services]
) -> None:
    services = make_services(pg_settings, today=lambda: TODAY)
    db, portfolio = services.db, services.portfolio
    prov = Provenance(effective_date=date(2024, 1, 15), actor="test")
    pid = portfolio.register_project(provenance=prov, name="Locks", ministry_code="MJ").id
    row = db.quick("SELECT pg_backend_pid() AS pid")
    assert row is not None
    backend = row["pid"]
    key = lock_key(PROJECTION, pg_settings.database_schema)
    holders: list[int] = []

    def holder(_: int) -> None:  # while the catch-up holds its lock
        with db.transaction(write=False) as tx:
            rows = tx.fetch(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND ((classid::bigint << 32) | objid::bigint) = %s",
                (key,),
            )
        holders.extend(int(r["pid"]) for r in rows)

    for n in range(3):
        _estimate(portfolio, pid, str(n + 1))
        catch_up(db, portfolio, PROJECTION, progress=holder)
    assert holders == [backend, backend, backend]
    assert (db.quick("SELECT pg_backend_pid() AS pid") or {}).get("pid") == backend


def test_a_commit_during_a_pass_reaches_the_project_states_before_the_next_projection(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    """Read-your-writes waits for the project states: a command committed while a later
    projection catches up is in them before the projection after it starts, not after the
    whole pass."""
    services = make_services(settings, today=lambda: TODAY)
    prov = Provenance(effective_date=date(2024, 1, 15), actor="test")
    pid = services.portfolio.register_project(
        provenance=prov, name="Pass", ministry_code="MJ", cost=Decimal(1)
    ).id
    catch_up_all(services.db, services.portfolio)
    names = list(registry.PROJECTIONS)
    seen: dict[str, int] = {}

    def then(name: str, applied: int) -> None:
        if name == names[1]:  # the second projection: a command commits meanwhile
            _estimate(services.portfolio, pid, "2")
            time.sleep(registry.STATES_FIRST_AFTER_S * 2)
        with services.db.transaction(write=False) as tx:
            seen[name] = int(
                tx.scalar("SELECT position FROM pr_tracking WHERE name = %s", (PROJECTION,))
            )

    _estimate(services.portfolio, pid, "1.5")
    head_before = services.portfolio.recorder.max_notification_id() or 0
    catch_up_all(services.db, services.portfolio, then=then)
    head_after = services.portfolio.recorder.max_notification_id() or 0
    assert head_after > head_before
    assert seen[names[1]] == head_before  # the command came after the states' first catch-up
    assert seen[names[2]] == head_after  # and was in them before the third projection ran
    assert _live_rows(services.db, pid)[-1][2] == Decimal(2)


def test_a_pass_reads_the_log_once_for_the_projections_at_the_same_position(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    services = make_services(settings, today=lambda: TODAY)
    db, portfolio = services.db, services.portfolio
    prov = Provenance(effective_date=date(2024, 1, 15), actor="test")
    pid = portfolio.register_project(
        provenance=prov, name="Shared", ministry_code="MJ", cost=Decimal(1)
    ).id
    catch_up_all(db, portfolio)
    reads: list[int] = []
    select = portfolio.recorder.select_notifications

    def counted(*args: object, **kwargs: object) -> object:
        reads.append(1)
        return select(*args, **kwargs)  # type: ignore[arg-type]

    portfolio.recorder.select_notifications = counted  # type: ignore[method-assign]
    try:
        for amount in ("2", "3"):
            _estimate(portfolio, pid, amount)
        reads.clear()
        applied = catch_up_all(db, portfolio)
    finally:
        del portfolio.recorder.select_notifications
    assert applied == dict.fromkeys(registry.PROJECTIONS, 2)  # every projection, both events
    assert len(reads) == 1
    head = portfolio.recorder.max_notification_id()
    with db.transaction(write=False) as tx:
        positions = {r["name"]: int(r["position"]) for r in tx.fetch("SELECT * FROM pr_tracking")}
    assert all(positions[name] == head for name in registry.PROJECTIONS)


def test_a_pass_keeps_a_bounded_number_of_notifications() -> None:
    from projections.catchup import PassReads

    class Recorder:
        def __init__(self) -> None:
            self.reads = 0

        def select_notifications(self, **kwargs: object) -> list[int]:
            self.reads += 1
            return list(range(int(kwargs["limit"])))  # type: ignore[call-overload]

    class Owner:
        recorder = Recorder()

    reads = PassReads(Owner())  # type: ignore[arg-type]
    big = PassReads.KEPT
    assert reads.select(0, big) is reads.select(0, big)  # kept: read once
    reads.select(big, 10)
    reads.select(big, 10)  # over the bound: read each time
    assert Owner.recorder.reads == 3
