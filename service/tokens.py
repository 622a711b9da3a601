"""Bearer API tokens, stored only as hashes in the events' database (table `api_tokens`).

A token reads `pnr_<id>_<secret>`: the id (16 hex digits) finds the row by its primary key,
the secret (32 random bytes, URL-safe base64) is never stored: only the SHA-256 of the whole
token is, compared in constant time. A token is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import sql

from projections.db import Database, Row, as_ts, ident

TABLE = "api_tokens"
ROLES = ("admin", "manager", "auditor", "subscriber")
PREFIX = "pnr_"
TOKEN_PATTERN = re.compile(r"^pnr_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
MINISTRY_PATTERN = re.compile(r"^\S{1,50}$")
_LOCK_ID = 0x70CE_A5ED  # serialises CREATE TABLE IF NOT EXISTS between processes (PostgreSQL)


class TokenError(ValueError):
    """A token that cannot be created as asked (bad role, name or ministry; duplicate name)."""


@dataclass(frozen=True)
class TokenRecord:
    """What is known about a token, never the token itself."""

    id: str
    name: str
    role: str
    ministries: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    created_by: str | None

    @property
    def actor(self) -> str:
        """The actor recorded on the events of the commands sent with this token."""
        return f"token:{self.name}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def token_hash(token: str) -> str:
    """The stored form of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class TokenStore:
    """Create, list, revoke and check tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_table(self) -> None:
        """Create the table if it is absent."""
        ddl = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            " id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL,"
            " ministries TEXT NOT NULL, hash TEXT NOT NULL, created_at TEXT NOT NULL,"
            " revoked_at TEXT, created_by TEXT)"
        ).format(ident(TABLE))
        with self.db.transaction() as tx:
            if tx.dialect == "postgres":
                tx.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            tx.execute(ddl)

    def create(
        self,
        role: str,
        *,
        ministries: tuple[str, ...] | list[str] = (),
        name: str | None = None,
        created_by: str | None = None,
    ) -> tuple[TokenRecord, str]:
        """Create a token: its record and the token itself (shown once, never stored)."""
        if role not in ROLES:
            raise TokenError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        codes = tuple(dict.fromkeys(code.strip() for code in ministries))
        if any(not MINISTRY_PATTERN.fullmatch(code) for code in codes):
            raise TokenError("a ministry code is 1 to 50 characters without spaces")
        if role == "manager" and not codes:
            raise TokenError("a manager token needs at least one --ministry")
        if role != "manager" and codes:
            raise TokenError("only a manager token is scoped to ministries")
        token_id = secrets.token_hex(8)
        name = name or f"{role}-{token_id}"
        if not NAME_PATTERN.fullmatch(name):
            raise TokenError("a name is 1 to 100 letters, digits or . _ @ + - (no spaces)")
        token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = datetime.now(UTC)
        insert = sql.SQL(
            "INSERT INTO {} (id, name, role, ministries, hash, created_at, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
        ).format(ident(TABLE))
        params = (token_id, name, role, json.dumps(list(codes)), token_hash(token))
        with self.db.transaction() as tx:
            if tx.execute(insert, (*params, now.isoformat(), created_by)) != 1:
                raise TokenError(f"a token named {name!r} already exists (names are never reused)")
        record = TokenRecord(token_id, name, role, codes, now, None, created_by)
        return record, token

    def authenticate(self, token: str) -> TokenRecord | None:
        """The active token's record, or None (malformed, unknown, revoked or wrong secret)."""
        match = TOKEN_PATTERN.fullmatch(token)
        if match is None:
            return None
        select = sql.SQL("SELECT * FROM {} WHERE id = %s").format(ident(TABLE))
        with self.db.transaction(write=False) as tx:
            row = tx.fetchone(select, (match.group(1),))
        if row is None or not hmac.compare_digest(str(row["hash"]), token_hash(token)):
            return None
        record = _record(row)
        return record if record.active else None

    def active_record(self, token_id: str) -> TokenRecord | None:
        """The record of an active token by its id (a signed-in page session), else None."""
        select = sql.SQL("SELECT * FROM {} WHERE id = %s").format(ident(TABLE))
        with self.db.transaction(write=False) as tx:
            row = tx.fetchone(select, (token_id,))
        record = None if row is None else _record(row)
        return record if record is not None and record.active else None

    def revoke(self, token_id: str) -> TokenRecord | None:
        """Revoke a token (for good); None when there is no such token."""
        update = sql.SQL("UPDATE {} SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL")
        select = sql.SQL("SELECT * FROM {} WHERE id = %s").format(ident(TABLE))
        with self.db.transaction() as tx:
            tx.execute(update.format(ident(TABLE)), (datetime.now(UTC).isoformat(), token_id))
            row = tx.fetchone(select, (token_id,))
        return None if row is None else _record(row)

    def records(self) -> list[TokenRecord]:
        """Every token, active or revoked, oldest first."""
        select = sql.SQL("SELECT * FROM {} ORDER BY created_at, id").format(ident(TABLE))
        with self.db.transaction(write=False) as tx:
            return [_record(row) for row in tx.fetch(select)]

    def has_active(self, role: str) -> bool:
        """Whether some token of this role is not revoked."""
        select = sql.SQL(
            "SELECT COUNT(*) AS n FROM {} WHERE role = %s AND revoked_at IS NULL"
        ).format(ident(TABLE))
        with self.db.transaction(write=False) as tx:
            return bool(tx.scalar(select, (role,)))


def _record(row: Row) -> TokenRecord:
    created = as_ts(row["created_at"])
    assert created is not None
    return TokenRecord(
        id=str(row["id"]),
        name=str(row["name"]),
        role=str(row["role"]),
        ministries=tuple(json.loads(row["ministries"])),
        created_at=created,
        revoked_at=as_ts(row["revoked_at"]),
        created_by=row["created_by"],
    )
