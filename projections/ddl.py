"""Start-up DDL, one recipe: every process serialises it under one advisory lock.

gunicorn and Celery processes boot at the same time. `CREATE ... IF NOT EXISTS` still
takes table locks, so a process that boots while another one catches a projection up can
be chosen as a deadlock victim; the DDL is idempotent, so trying again is safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors, sql

from projections.db import Database, Tx

log = logging.getLogger(__name__)
DDL_LOCK_KEY = 7_021_964_410_512_345  # an arbitrary constant shared by every process
ATTEMPTS = 6
_COLLISIONS = (errors.DeadlockDetected, errors.LockNotAvailable, errors.SerializationFailure)


def run_ddl(db: Database, setup: Callable[[Tx], None], attempts: int = ATTEMPTS) -> None:
    """Run `setup` in one transaction under the DDL lock; retry when it collides."""
    for attempt in range(attempts):
        try:
            with db.transaction() as tx:
                if tx.dialect == "postgres":
                    tx.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK_KEY,))
                setup(tx)
            return
        except _COLLISIONS:
            if attempt == attempts - 1:
                raise
            log.warning("start-up DDL collided with a running catch-up; retrying")
            time.sleep(0.05 * 2**attempt)


@contextmanager
def ddl_session(conninfo: str, schema: str) -> Iterator[None]:
    """Hold the DDL lock for a block (DDL that is not ours: the event store's), in `schema`."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (DDL_LOCK_KEY,))
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (DDL_LOCK_KEY,))
