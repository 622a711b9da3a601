"""Idempotency-Key on every command: the first answer is stored, and replayed to retries.

The key is claimed first, by an INSERT that does nothing when (actor, key) exists; the
command runs only for the request that made the claim, and its response (2xx or 4xx) is
stored afterwards. A 5xx releases the claim, so the client may retry with the same key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, Response, g, request
from psycopg import sql

from projections.db import Database, ident
from service.auth import current_actor
from service.errors import Problem

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
TABLE = "idempotency_keys"
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"
STORED_HEADERS = ("Content-Type", "Location", "ETag", "Allow")
_LOCK_ID = 0x1D3E_7A11  # serialises CREATE TABLE IF NOT EXISTS between processes (PostgreSQL)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    headers: dict[str, str]


class IdempotencyStore:
    """The table of claimed keys and their stored responses, in the events' database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_table(self) -> None:
        """Create the table if it is absent."""
        ddl = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            " actor TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,"
            " status INTEGER, body TEXT, headers TEXT, created_at TEXT NOT NULL,"
            " PRIMARY KEY (actor, key))"
        ).format(ident(TABLE))
        with self.db.transaction() as tx:
            if tx.dialect == "postgres":
                tx.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            tx.execute(ddl)

    def claim(self, actor: str, key: str, fingerprint: str) -> StoredResponse | None:
        """Claim the key (None), or return the response stored for the same request."""
        insert = sql.SQL(
            "INSERT INTO {} (actor, key, fingerprint, created_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (actor, key) DO NOTHING"
        ).format(ident(TABLE))
        select = sql.SQL(
            "SELECT fingerprint, status, body, headers FROM {} WHERE actor = %s AND key = %s"
        ).format(ident(TABLE))
        now = datetime.now(UTC).isoformat()
        for _ in range(3):  # the row may vanish between the two statements (a released claim)
            with self.db.transaction() as tx:
                if tx.execute(insert, (actor, key, fingerprint, now)) == 1:
                    return None
                row = tx.fetchone(select, (actor, key))
            if row is None:
                continue
            if row["fingerprint"] != fingerprint:
                raise Problem(
                    422,
                    f"this {HEADER} was already used for a different request; use a new key",
                    field=HEADER,
                )
            if row["status"] is None:
                raise Problem(
                    409,
                    f"a request with this {HEADER} is in progress; retry later",
                    field=HEADER,
                    title="Request in progress",
                    headers={"Retry-After": "1"},
                )
            return StoredResponse(row["status"], row["body"], json.loads(row["headers"]))
        raise Problem(409, f"could not claim this {HEADER}; retry", field=HEADER)

    def complete(self, actor: str, key: str, response: StoredResponse) -> None:
        """Store the final response of a claimed key."""
        update = sql.SQL(
            "UPDATE {} SET status = %s, body = %s, headers = %s WHERE actor = %s AND key = %s"
        ).format(ident(TABLE))
        params = (response.status, response.body, json.dumps(response.headers), actor, key)
        with self.db.transaction() as tx:
            tx.execute(update, params)

    def release(self, actor: str, key: str) -> None:
        """Forget a claim whose request failed on our side."""
        delete = sql.SQL("DELETE FROM {} WHERE actor = %s AND key = %s AND status IS NULL").format(
            ident(TABLE)
        )
        with self.db.transaction() as tx:
            tx.execute(delete, (actor, key))


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
    """Claim keys before POST commands, store their responses after."""

    @app.before_request
    def claim_key() -> Response | None:
        if request.method != "POST" or request.endpoint is None:
            return None
        key = request_key()
        if key is None:
            return None
        actor = current_actor()
        stored = store.claim(actor, key, fingerprint())
        if stored is not None:
            replay = Response(stored.body, status=stored.status, headers=stored.headers)
            replay.headers["Idempotent-Replayed"] = "true"
            return replay
        g.idempotency_claim = (actor, key)
        return None

    @app.after_request
    def store_response(response: Response) -> Response:
        claim: tuple[str, str] | None = g.pop("idempotency_claim", None)
        if claim is None:
            return response
        try:
            if response.status_code >= 500:
                store.release(*claim)
            else:
                headers = {k: v for k, v in response.headers.items() if k in STORED_HEADERS}
                stored = StoredResponse(response.status_code, response.get_data(True), headers)
                store.complete(*claim, stored)
        except Exception:  # the command's outcome stands; the claim stays "in progress"
            log.exception("could not store the response of %s %r", HEADER, claim[1])
        return response

    @app.teardown_request
    def release_claim(_: BaseException | None) -> None:
        claim: tuple[str, str] | None = g.pop("idempotency_claim", None)
        if claim is not None:
            store.release(*claim)
