"""The composition root: wire the application, the database and the projection trigger."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from domain.application import Portfolio, utc_today
from domain.currency import CurrencyMismatch
from domain.ministry import load_seed
from projections import verify_log
from projections.db import Database
from projections.ddl import ddl_session, run_ddl
from projections.rebuild import PostgresStore
from projections.registry import catch_up_all, setup_all
from service.config import Settings

log = logging.getLogger(__name__)


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
    """Build the services for the configured deployment (embedded or production).

    Creates the read models, then decides how a committed command reaches them: with
    REDIS_URL set a Celery task is enqueued (the workers catch up), otherwise the
    catch-up runs in-process right after the command (the embedded default). A worker
    (`in_worker`) catches up itself and never enqueues.
    """
    settings = settings or Settings.from_env()
    if settings.is_postgres:
        with ddl_session(settings.postgres_conninfo, settings.database_schema):
            portfolio = Portfolio(env=settings.eventsourcing_env(), today=today)
    else:
        portfolio = Portfolio(env=settings.eventsourcing_env(), today=today)
    services = Services(settings=settings, portfolio=portfolio, db=make_database(settings))
    setup_all(services.db)
    run_ddl(services.db, verify_log.setup)
    if not in_worker:
        services.after_commit = trigger(services)
    set_up_reference(services)
    return services


def set_up_reference(services: Services) -> None:
    """Record the portfolio's currency on first use (refuse another later) and the seed's
    ministries the reference lacks (idempotent); the read models then catch up."""
    portfolio = services.portfolio
    try:
        portfolio.configure_currency(services.settings.currency)
    except CurrencyMismatch as e:
        services.close()
        raise ConfigurationError(e.message) from None
    try:
        seeded = portfolio.seed_ministries(load_seed())
    except Exception:  # e.g. an altered store: `panorama verify` must still run and say where
        log.exception("the ministries reference could not be seeded")
        return
    if seeded is not None:
        services.after_commit(seeded.position)


class ConfigurationError(RuntimeError):
    """The settings contradict what this database recorded (e.g. its currency)."""


def trigger(services: Services) -> Callable[[int], None]:
    """What runs after a commit: enqueue to the workers, or catch up in-process."""
    settings = services.settings
    if settings.redis_url:
        from workers.enqueue import Enqueuer

        return Enqueuer(settings.redis_url, settings.celery_queue)
    from workers.delivery import deliver_due

    def catch_up_now(_position: int) -> None:
        try:
            catch_up_all(services.db, services.portfolio, batch_size=settings.projection_batch_size)
        finally:
            # Embedded: due alert deliveries go out here, bounded (docs/alerts.md).
            deliver_due(
                services.db,
                policy=settings.webhook_policy(),
                limit=10,
                timeout_s=2.0,
                smtp_url=settings.smtp_url,
            )

    return catch_up_now


def store_opener(settings: Settings) -> PostgresStore | None:
    """A picklable opener of this deployment's store, for the children of a parallel rebuild."""
    if not settings.is_postgres:
        return None
    return PostgresStore(
        settings.postgres_conninfo, settings.database_schema, settings.eventsourcing_env()
    )
