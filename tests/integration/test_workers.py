"""Catch-up by real Celery worker processes: crashes and concurrency never break exactness."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import redis

from domain.application import Provenance
from projections import queries
from projections.catchup import tracking_positions
from projections.registry import PROJECTIONS
from projections.state import fold
from service.bootstrap import Services
from tests.histories import BASE, TODAY, Step, apply_step, register_projects
from tests.integration.conftest import Production, tracked, wait_until
from workers.celery_app import CATCH_UP_TASK, PENDING_KEY


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


def test_every_commit_of_a_burst_and_the_one_after_it_reaches_every_projection(
    production: Production,
) -> None:
    # One catch-up task serves a burst (workers/tasks.py); the commits of the burst enqueue
    # nothing, so a commit lost at the moment the task clears the pending flag would stay
    # unprojected. Writers commit from threads while the worker is busy catching up.
    services = production.services(lambda: TODAY)
    production.workers.start()
    ids = _write_history(services, projects=8, steps=40)  # warm-up: the worker is running

    def command(project: object, amount: int) -> int:
        result = services.portfolio.reestimate_cost(
            project,  # type: ignore[arg-type]
            Decimal(amount),
            provenance=Provenance(TODAY, "tester", "test"),
        )
        services.after_commit(result.position)  # as the web process does after a command
        return result.position

    def burst(writer: int) -> None:
        for n in range(60):
            command(ids[writer], 9000 + n)  # a project of its own: no version conflicts

    writers = [threading.Thread(target=burst, args=(k,)) for k in range(4)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    head = services.portfolio.recorder.max_notification_id()
    wait_until(lambda: _all_at(services, head), 60, "every projection to reach the burst's end")

    # The burst is over and the flag cleared: a lone commit later is caught up on its own.
    wait_until(lambda: not _pending(production), 30, "the pending flag to be cleared")
    last = command(ids[0], 1)
    wait_until(lambda: _all_at(services, last), 30, "the lone commit to be projected")
    _assert_exact(services, ids)


def _all_at(services: Services, head: int | None) -> bool:
    positions = tracking_positions(services.db)
    return all(positions.get(name, 0) >= (head or 0) for name in PROJECTIONS)


def _pending(production: Production) -> bool:
    assert production.settings.redis_url is not None
    key = PENDING_KEY + production.settings.celery_queue
    return bool(redis.Redis.from_url(production.settings.redis_url).exists(key))
