"""The PostgreSQL event recorder: one round trip per save, still gapless for a reader tailing.

projections/recorders.py sends BEGIN, the table lock, the INSERT and COMMIT as one message.
What a user would notice if that went wrong: a catch-up that skips events committed
concurrently (a gap filled later), a refused save that records half of itself, or a
connection left broken after a conflict.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest

from domain.application import Provenance
from domain.errors import VersionConflict
from service.bootstrap import Services
from service.config import Settings

pytestmark = pytest.mark.postgres

PROV = Provenance(effective_date=date(2024, 1, 15), actor="test", source="api")


def _register(services: Services, name: str) -> object:
    return services.portfolio.register_project(provenance=PROV, name=name, ministry_code="MEF").id


def test_a_reader_tailing_the_log_never_passes_an_event_committed_later(
    pg_settings: Settings, make_services: Callable[..., Services]
) -> None:
    services = make_services(pg_settings)
    portfolio = services.portfolio
    writers, each = 6, 40
    projects = [_register(services, f"P{i}") for i in range(writers)]
    start = portfolio.recorder.max_notification_id() or 0
    done = threading.Event()
    seen: list[int] = []

    def tail() -> None:
        # What the catch-up does: read after the last id seen, again and again.
        last = start
        while True:
            finished = done.is_set()
            batch = portfolio.recorder.select_notifications(start=last + 1, limit=1000)
            seen.extend(n.id for n in batch)
            last = batch[-1].id if batch else last
            if finished and not batch:
                return

    def write(project: object) -> None:
        for n in range(each):
            portfolio.reestimate_cost(project, Decimal(1000 + n), provenance=PROV)  # type: ignore[arg-type]

    reader = threading.Thread(target=tail)
    reader.start()
    threads = [threading.Thread(target=write, args=(p,)) for p in projects]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()

    recorded = [
        n.id for n in portfolio.recorder.select_notifications(start=start + 1, limit=10_000)
    ]
    assert len(recorded) == writers * each
    assert seen == recorded  # every event, in order, none passed over


def test_a_conflicting_save_records_nothing_and_the_next_save_works(
    pg_settings: Settings, make_services: Callable[..., Services]
) -> None:
    first = make_services(pg_settings)
    second = make_services(pg_settings)  # its own cache: it will save a stale version
    project = _register(first, "SI RH")
    stale = second.portfolio.get_project(project)  # type: ignore[arg-type]
    first.portfolio.reestimate_cost(project, Decimal(10), provenance=PROV)  # type: ignore[arg-type]
    before = first.portfolio.recorder.max_notification_id()

    stale.reestimate_cost(Decimal(20), provenance=PROV, today=date(2024, 6, 30))
    with pytest.raises(VersionConflict):
        second.portfolio._save(stale)
    assert first.portfolio.recorder.max_notification_id() == before

    # The same process goes on saving (its connection was not left in a failed transaction).
    result = second.portfolio.reestimate_cost(project, Decimal(30), provenance=PROV)  # type: ignore[arg-type]
    assert result.position > (before or 0)
    assert first.portfolio.get_project(project).current_cost == Decimal(30)  # type: ignore[arg-type]


def test_one_save_of_several_events_gets_consecutive_positions(
    pg_settings: Settings, make_services: Callable[..., Services]
) -> None:
    services = make_services(pg_settings)
    project = services.portfolio.get_project(_register(services, "SI RH"))  # type: ignore[arg-type]
    for n in range(3):
        project.reestimate_cost(Decimal(100 + n), provenance=PROV, today=date(2024, 6, 30))
    result = services.portfolio._save(project)
    tail = services.portfolio.recorder.select_notifications(start=result.position - 2, limit=10)
    assert [n.originator_version for n in tail] == [
        project.version - 2,
        project.version - 1,
        project.version,
    ]
    assert [n.id for n in tail] == [result.position - 2, result.position - 1, result.position]
