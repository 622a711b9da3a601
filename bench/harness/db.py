"""Fresh PostgreSQL schemas, the services on them, and the read-and-decode baseline."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from bench.harness.config import PG_URL
from service.bootstrap import Services, bootstrap
from service.config import Settings


@contextmanager
def fresh_schema(prefix: str = "bench") -> Iterator[str]:
    """A PostgreSQL schema that exists for the duration of one benchmark."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def schema_services(schema: str, today: Callable[[], date] | None = None) -> Services:
    """The services on `schema` with the projection trigger off: its tables exist afterwards."""
    settings = Settings(database_url=PG_URL, database_schema=schema)
    if today is None:
        return bootstrap(settings, in_worker=True)
    return bootstrap(settings, today=today, in_worker=True)


def raw_decode_rate(portfolio: Any) -> float:
    """The baseline of every replay: reading the notification log and decoding it, events/s."""
    t0 = time.perf_counter()
    start, decoded = 0, 0
    while batch := portfolio.recorder.select_notifications(
        start=start, limit=2000, inclusive_of_start=False
    ):
        for notification in batch:
            portfolio.mapper.to_domain_event(notification)
        decoded += len(batch)
        start = batch[-1].id
    return decoded / (time.perf_counter() - t0)
