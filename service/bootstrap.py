"""Wire the application, the database and the projection trigger in one place."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

from domain.application import Portfolio, utc_today
from projections.db import Database
from service.config import Settings

log = logging.getLogger(__name__)
DDL_LOCK_KEY = 7_021_964_410_512_345  # an arbitrary constant shared by every process


@dataclass
class Services:
    """What the HTTP layer, the CLI and the workers share."""

    settings: Settings
    portfolio: Portfolio
    db: Database
    # Called with the notification position once a command's save has committed.
    after_commit: Callable[[int], None] = field(default=lambda position: None)

    def close(self) -> None:
        self.db.close()
        self.portfolio.close()


def make_database(settings: Settings) -> Database:
    """The read-model database: the same database as the events."""
    if settings.is_postgres:
        return Database(
            dialect="postgres",
            conninfo=settings.postgres_conninfo,
            schema=settings.database_schema,
            pool_size=settings.db_pool_size,
        )
    if settings.is_memory:
        raise ValueError("the in-memory store is for unit tests of the domain only")
    return Database(dialect="sqlite", sqlite_path=settings.sqlite_path)


def bootstrap(
    settings: Settings | None = None,
    *,
    today: Callable[[], date] = utc_today,
    in_worker: bool = False,
) -> Services:
    """Build the services for the configured deployment (embedded or production)."""
    settings = settings or Settings.from_env()
    from projections.runner import install_trigger

    with _ddl_lock(settings):
        portfolio = Portfolio(env=settings.eventsourcing_env(), today=today)
        db = make_database(settings)
        services = Services(settings=settings, portfolio=portfolio, db=db)
        _with_retries(lambda: install_trigger(services, in_worker=in_worker))
    return services


def _with_retries(setup: Callable[[], None], attempts: int = 6) -> None:
    """Run the start-up DDL, retrying when it collides with a running catch-up.

    `CREATE ... IF NOT EXISTS` still takes table locks, so a process that boots while
    another one catches a projection up can be chosen as a deadlock victim; the DDL is
    idempotent, so trying again is safe.
    """
    import time

    from psycopg import errors

    for attempt in range(attempts):
        try:
            setup()
            return
        except (errors.DeadlockDetected, errors.LockNotAvailable, errors.SerializationFailure):
            if attempt == attempts - 1:
                raise
            log.warning("start-up DDL collided with a running catch-up; retrying")
            time.sleep(0.05 * 2**attempt)


@contextmanager
def _ddl_lock(settings: Settings) -> Iterator[None]:
    """Serialise start-up DDL: gunicorn and Celery processes boot at the same time."""
    if not settings.is_postgres:
        yield
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(settings.postgres_conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (DDL_LOCK_KEY,))
        try:
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(settings.database_schema)
                )
            )
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (DDL_LOCK_KEY,))
