"""Embedded (SQLite): a command that cannot get the writer in time is a 503 to retry, not a 500."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from service.app import create_app
from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, Http, assert_problem, authorize, make_token


def embedded(services: Services) -> Http:
    app = create_app(services)
    app.testing = True
    return Http(authorize(app.test_client(), make_token(services, "admin")))


@contextmanager
def writer_held_by_another_thread(services: Services, timeout_s: float) -> Iterator[None]:
    """Take the event store's one writer connection, as a long save in another thread does."""
    pool = services.portfolio.recorder.datastore.pool  # type: ignore[attr-defined]
    pool.pool_timeout = timeout_s
    connection = pool.get_connection(is_writer=True)
    try:
        yield
    finally:
        pool.put_connection(connection)


def test_a_command_waiting_too_long_for_the_writer_is_503_with_retry_after(
    sqlite_settings: Settings, make_services: Callable[..., Services]
) -> None:
    services = make_services(sqlite_settings, today=lambda: TODAY)
    http = embedded(services)
    project = http.register()
    with writer_held_by_another_thread(services, timeout_s=0.2):
        busy = http.command(project, "cost-estimates", {"amount": "42.00"})
    assert_problem(busy, 503)
    assert busy.headers["Retry-After"] == "1"
    retried = http.command(project, "cost-estimates", {"amount": "42.00"})
    assert retried.status_code == 201
    assert [e["type"] for e in http.events(project)] == ["Registered", "CostReestimated"]


def test_a_command_blocked_by_another_connection_s_write_lock_is_503(
    sqlite_settings: Settings, make_services: Callable[..., Services]
) -> None:
    settings = dataclasses.replace(sqlite_settings, sqlite_lock_timeout_s=1)
    services = make_services(settings, today=lambda: TODAY)
    http = embedded(services)
    project = http.register()
    other = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction holds the lock
    try:
        busy = http.command(project, "status-reports", {"rating": "Green"})
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert_problem(busy, 503)
    assert busy.headers["Retry-After"] == "1"
    assert len(http.events(project)) == 1
