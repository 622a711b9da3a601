"""Idempotency-Key on every command: the first answer is stored, and replayed to retries.

A key is claimed by one INSERT (actor, key) that holds a lease (IDEMPOTENCY_LEASE_SECONDS).
A command's answer is written in the SAME transaction as its events (through the recorders
of projections/recorders.py), so a process killed right after the commit leaves the outcome
behind; a refusal (4xx, nothing recorded) is stored after the response is built. A 5xx
releases the claim. A claim left without an outcome (its process died before the commit)
can be taken over once its lease has run out, and the command runs again. Every write of
a claim is fenced by the claim's own id, so a request whose lease was taken over records
nothing. Keys are forgotten IDEMPOTENCY_TTL_SECONDS after their claim (purged lazily).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request
from psycopg import sql

from domain.application import CommandResult, recorded_with_events
from projections.db import Database, Query, Tx, ident
from projections.ddl import run_ddl
from projections.recorders import WriteRefused
from service.auth import current_actor
from service.errors import Problem, handle_problem

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
TABLE = "idempotency_keys"
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"
STORED_HEADERS = ("Content-Type", "Location", "ETag", "Allow")
_NEW_COLUMNS = ("claim TEXT", "lease_until DOUBLE PRECISION", "expires_at DOUBLE PRECISION")


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    headers: dict[str, str]


@dataclass
class Claim:
    """A key this request holds; `recorded` once its outcome was committed with its events."""

    actor: str
    key: str
    id: str
    recorded: bool = field(default=False)


class IdempotencyStore:
    """The table of claimed keys and their stored responses, in the events' database."""

    def __init__(
        self,
        db: Database,
        *,
        lease_s: float = 30.0,
        ttl_s: float = 7 * 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.lease_s = lease_s
        self.ttl_s = ttl_s
        self.clock = clock
        self._next_purge = 0.0
        self._purge_lock = threading.Lock()

    def create_table(self) -> None:
        """Create the table if it is absent; add the lease and expiry columns to an old one."""
        ddl = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            " actor TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,"
            " status INTEGER, body TEXT, headers TEXT, created_at TEXT NOT NULL,"
            " claim TEXT, lease_until DOUBLE PRECISION, expires_at DOUBLE PRECISION,"
            " PRIMARY KEY (actor, key))"
        ).format(ident(TABLE))
        index = sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (expires_at)").format(
            ident(f"{TABLE}_expires_at"), ident(TABLE)
        )

        def setup(tx: Tx) -> None:
            tx.execute(ddl)
            self._add_columns(tx)
            tx.execute(index)
            # keys claimed before expiry existed live one more TTL from now
            tx.execute(
                sql.SQL("UPDATE {} SET expires_at = %s WHERE expires_at IS NULL").format(
                    ident(TABLE)
                ),
                (self.clock() + self.ttl_s,),
            )

        run_ddl(self.db, setup)

    @staticmethod
    def _add_columns(tx: Any) -> None:
        if tx.dialect == "postgres":
            for column in _NEW_COLUMNS:
                tx.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS ").format(ident(TABLE))
                    + sql.SQL(column)
                )
            return
        present = {r["name"] for r in tx.fetch(f"PRAGMA table_info({TABLE})")}
        for column in _NEW_COLUMNS:
            if column.split()[0] not in present:
                tx.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN ").format(ident(TABLE)) + sql.SQL(column)
                )

    def claim(self, actor: str, key: str, fingerprint: str) -> Claim | StoredResponse:
        """Claim the key, or return the response stored for the same request.

        The claim succeeds when the key is new, expired, or held by an abandoned claim of
        the same request (no outcome, lease run out).
        """
        now = self.clock()
        self._purge_now_and_then(now)
        claim = Claim(actor, key, uuid.uuid4().hex)
        table = ident(TABLE)
        upsert = sql.SQL(
            "INSERT INTO {t} (actor, key, fingerprint, created_at, claim, lease_until, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (actor, key) DO UPDATE SET fingerprint = excluded.fingerprint,"
            " created_at = excluded.created_at, claim = excluded.claim,"
            " lease_until = excluded.lease_until, expires_at = excluded.expires_at,"
            " status = NULL, body = NULL, headers = NULL"
            " WHERE {t}.expires_at <= %s OR ({t}.status IS NULL"
            " AND {t}.fingerprint = excluded.fingerprint"
            " AND ({t}.lease_until IS NULL OR {t}.lease_until <= %s))"
        ).format(t=table)
        select = sql.SQL(
            "SELECT fingerprint, status, body, headers, lease_until FROM {}"
            " WHERE actor = %s AND key = %s"
        ).format(table)
        created = datetime.fromtimestamp(now, UTC).isoformat()
        params = (actor, key, fingerprint, created, claim.id, now + self.lease_s)
        with self.db.transaction() as tx:
            if tx.execute(upsert, (*params, now + self.ttl_s, now, now)) == 1:
                return claim
            row = tx.fetchone(select, (actor, key))
        if row is None:  # released between the two statements: the client may retry at once
            raise _in_progress(0)
        if row["fingerprint"] != fingerprint:
            raise Problem(
                422,
                f"this {HEADER} was already used for a different request; use a new key",
                field=HEADER,
            )
        if row["status"] is None:
            raise _in_progress(max(1, math.ceil(float(row["lease_until"] or now) - now)))
        return StoredResponse(row["status"], row["body"], json.loads(row["headers"]))

    def record_statement(
        self, claim: Claim, response: StoredResponse
    ) -> tuple[Query, tuple[Any, ...]]:
        """The UPDATE that stores the claim's outcome (it changes one row while the claim holds)."""
        # qualified: the event store's PostgreSQL connections have no search_path of ours
        table = ident(self.db.schema, TABLE) if self.db.dialect == "postgres" else ident(TABLE)
        update = sql.SQL(
            "UPDATE {} SET status = %s, body = %s, headers = %s, lease_until = NULL"
            " WHERE actor = %s AND key = %s AND claim = %s AND status IS NULL"
        ).format(table)
        params = (
            response.status,
            response.body,
            json.dumps(response.headers),
            claim.actor,
            claim.key,
            claim.id,
        )
        return update, params

    def complete(self, claim: Claim, response: StoredResponse) -> None:
        """Store the final response of a claim that recorded no events (a refusal)."""
        with self.db.transaction() as tx:
            tx.execute(*self.record_statement(claim, response))

    def release(self, claim: Claim) -> None:
        """Forget a claim whose request failed on our side."""
        delete = sql.SQL(
            "DELETE FROM {} WHERE actor = %s AND key = %s AND claim = %s AND status IS NULL"
        ).format(ident(TABLE))
        with self.db.transaction() as tx:
            tx.execute(delete, (claim.actor, claim.key, claim.id))

    def purge(self, now: float | None = None) -> int:
        """Delete the expired keys; return how many."""
        delete = sql.SQL("DELETE FROM {} WHERE expires_at <= %s").format(ident(TABLE))
        with self.db.transaction() as tx:
            return tx.execute(delete, (self.clock() if now is None else now,))

    def _purge_now_and_then(self, now: float) -> None:
        with self._purge_lock:
            if now < self._next_purge:
                return
            self._next_purge = now + min(60.0, self.ttl_s / 10)
        try:
            self.purge(now)
        except Exception:  # a purge that fails (a busy database) waits for the next one
            log.warning("could not purge expired %s keys", HEADER, exc_info=True)


def _in_progress(lease_left: int) -> Problem:
    """409 while another request holds the key: its lease ends within `lease_left` seconds."""
    return Problem(
        409,
        f"a request with this {HEADER} is in progress; retry later (its claim lapses"
        f" within {lease_left} s if it never completes)",
        field=HEADER,
        title="Request in progress",
        headers={"Retry-After": "1"},
    )


def current_claim() -> Claim | None:
    """The key this request claimed, if any."""
    claim: Claim | None = g.get("idempotency_claim")
    return claim


@contextmanager
def outcome_with_events(
    store: IdempotencyStore, render: Callable[[CommandResult], Response]
) -> Iterator[list[Response]]:
    """Commands saved in this block write `render(result)` as the claim's outcome, atomically.

    Yields the list of rendered responses (the last one is the one committed).
    """
    claim = current_claim()
    rendered: list[Response] = []
    if claim is None:
        yield rendered
        return

    def write(result: CommandResult) -> tuple[Query, tuple[Any, ...]]:
        response = render(result)
        rendered.append(response)
        return store.record_statement(claim, stored_response(response))

    with recorded_with_events(write):
        yield rendered
    claim.recorded = bool(rendered)


def stored_response(response: Response) -> StoredResponse:
    """What is kept of a response: status, body and the headers a replay needs."""
    headers = {k: v for k, v in response.headers.items() if k in STORED_HEADERS}
    return StoredResponse(response.status_code, response.get_data(True), headers)


def request_key() -> str | None:
    """The request's Idempotency-Key, validated, or None."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not re.fullmatch(KEY_PATTERN, key):
        raise Problem(400, f"{HEADER} must be 1 to 255 printable ASCII characters", field=HEADER)
    return key


def fingerprint() -> str:
    """Method, path, If-Match and the canonical JSON body, hashed."""
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        body = raw
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.headers.get("If-Match", "")):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(body)
    return digest.hexdigest()


def init_app(app: Flask, store: IdempotencyStore) -> None:
    """Claim keys before POST commands, store their refusals after."""
    app.extensions["panorama_idempotency"] = store

    @app.errorhandler(WriteRefused)
    def claim_lost(_: WriteRefused) -> Response:
        return handle_problem(
            Problem(
                409,
                f"this request's {HEADER} lapsed and was taken over by a retry; nothing was"
                " recorded by this request",
                field=HEADER,
                title="Request superseded",
            )
        )

    @app.before_request
    def claim_key() -> Response | None:
        if request.method != "POST" or request.endpoint is None:
            return None
        key = request_key()
        if key is None:
            return None
        claimed = store.claim(current_actor(), key, fingerprint())
        if isinstance(claimed, StoredResponse):
            replay = Response(claimed.body, status=claimed.status, headers=claimed.headers)
            replay.headers["Idempotent-Replayed"] = "true"
            return replay
        g.idempotency_claim = claimed
        return None

    @app.after_request
    def store_response(response: Response) -> Response:
        claim: Claim | None = g.pop("idempotency_claim", None)
        if claim is None or claim.recorded:
            return response
        try:
            if response.status_code >= 500:
                store.release(claim)
            else:
                store.complete(claim, stored_response(response))
        except Exception:  # the answer stands; the claim is re-runnable once its lease ends
            log.exception("could not store the response of %s %r", HEADER, claim.key)
        return response

    @app.teardown_request
    def release_claim(_: BaseException | None) -> None:
        claim: Claim | None = g.pop("idempotency_claim", None)
        if claim is not None and not claim.recorded:
            store.release(claim)
