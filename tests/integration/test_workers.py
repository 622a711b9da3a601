"""Catch-up by real Celery worker processes: crashes and concurrency never break exactness."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from domain.application import Provenance
from projections import queries
from projections.state import fold
from service.bootstrap import Services
from tests.histories import BASE, TODAY, Step, apply_step, register_projects
from tests.integration.conftest import Production, tracked, wait_until
from workers.celery_app import CATCH_UP_TASK


def _write_history(services: Services, projects: int, steps: int) -> list:
    portfolio = services.portfolio
    ids = []
    for _ in range(projects // 4):
        ids.extend(register_projects(portfolio))
    programme = portfolio.create_programme(
        name="FTAP",
        envelope=Decimal("1e12"),
        provenance=Provenance(BASE, "tester", "test"),
    ).id
    kinds = ["cost", "schedule", "phase", "status", "cost", "withhold", "disclose", "award"]
    for n in range(steps):
        day = (n * 53) % 1500 if n % 23 else (n * 7) % 300  # a few backdated corrections
        step = Step(
            0, kinds[n % len(kinds)], day, (Decimal(5000 + n), "Déploiement", "Amber", True), 0
        )
        apply_step(portfolio, [ids[(n * 7) % len(ids)]] * 4, programme, step)
    return ids


def _assert_exact(services: Services, ids: list) -> None:
    portfolio = services.portfolio
    streams = {str(i): portfolio.project_events(i) for i in ids}
    total = sum(len(s) for s in streams.values())
    with services.db.transaction(write=False) as tx:
        assert tx.scalar("SELECT count(*) FROM pr_events") == total  # none twice, none skipped
        for offset in (-10, 0, 200, 700, 1100, 1600):
            as_of = BASE + timedelta(days=offset)
            for pid, events in streams.items():
                assert queries.project_state(tx, pid, as_of, None) == fold(events, as_of=as_of)


def test_killing_a_worker_mid_catch_up_loses_and_duplicates_nothing(
    production: Production,
) -> None:
    services = production.services(lambda: TODAY, enqueue=False)
    workers = production.workers
    ids = _write_history(services, projects=40, steps=2000)
    head = services.portfolio.recorder.max_notification_id()
    assert head is not None and head > 1400

    first = workers.start()
    production.send(CATCH_UP_TASK, "project_states")
    wait_until(lambda: tracked(services) >= 400, 60, "the first worker to make progress")
    workers.kill(first)
    stopped_at = tracked(services)
    assert 0 < stopped_at < head, "the kill must land in the middle of the catch-up"

    workers.start()
    production.send(CATCH_UP_TASK, "project_states")
    wait_until(lambda: tracked(services) == head, 120, "the second worker to finish")
    _assert_exact(services, ids)


def test_two_workers_at_once_stay_exact(production: Production) -> None:
    services = production.services(lambda: TODAY, enqueue=False)
    workers = production.workers
    ids = _write_history(services, projects=20, steps=1500)
    head = services.portfolio.recorder.max_notification_id()
    workers.start(concurrency=2)
    workers.start(concurrency=2)
    for _ in range(8):
        production.send(CATCH_UP_TASK, "project_states")
    wait_until(lambda: tracked(services) == head, 120, "the workers to finish")
    _assert_exact(services, ids)
