"""Production shape: the Enqueuer announces both projections, a real Celery worker chains."""

from __future__ import annotations

from projections import hashchain
from projections.chain_verify import verify
from service.bootstrap import Services
from tests.chain_helpers import write_history
from tests.histories import TODAY
from tests.integration.conftest import Production, tracked, wait_until
from workers.celery_app import CATCH_UP_TASK


def _chained(services: Services) -> int:
    with services.db.transaction(write=False) as tx:
        return hashchain.chain_position(tx)


def test_a_worker_catches_the_chain_up_with_the_read_model(production: Production) -> None:
    services = production.services(lambda: TODAY)
    production.workers.start()
    head = write_history(services, 40)  # after_commit: one task for all projections
    wait_until(
        lambda: _chained(services) == head and tracked(services) == head,
        60,
        "the worker to catch both projections up",
    )
    report = verify(services.db, services.portfolio)
    assert report.ok and report.position == head and report.not_yet_chained == 0

    services.after_commit = lambda position: None
    head = write_history(services, 10, start=40)
    production.send(CATCH_UP_TASK, "hash_chain")
    wait_until(lambda: _chained(services) == head, 60, "the hash_chain task")
    assert verify(services.db, services.portfolio).ok
