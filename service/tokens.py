"""Bearer API tokens, stored only as hashes in the events' database (table `api_tokens`).

A token reads `pnr_<id>_<secret>`: the id (16 hex digits) finds the row by its primary key,
the secret (32 random bytes, URL-safe base64) is never stored: only the SHA-256 of the whole
token is, compared in constant time. A token is shown once, when it is created.
A token expires (`expires_at`, UTC; NULL for a token made with `never`, and for the tokens
of databases older than expiry, which keep working): new tokens expire after
TOKEN_EXPIRES_IN (default 90 days) unless told otherwise.
A process may reuse a token it checked for TOKEN_CACHE_SECONDS (default 5), keyed by the
token's hash, only while the revocation counter (one row, `token_revocations`, read on every
request) is still the one read before the check. A trigger raises the counter in the
transaction of every UPDATE or DELETE of `api_tokens` (a revocation, or an operator's own
SQL), so such a change holds from the next request on every process; an expiry is checked
on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from psycopg import sql

from domain.values import canonical_ministry
from projections.db import Database, Row, Tx, as_ts, ident
from projections.ddl import run_ddl

TABLE = "api_tokens"
REVOCATIONS = "token_revocations"  # one row: how many revocations there ever were
CACHE_ENTRIES = 1024
ROLES = ("admin", "manager", "auditor", "subscriber")
PREFIX = "pnr_"
TOKEN_PATTERN = re.compile(r"^pnr_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
MINISTRY_PATTERN = re.compile(r"^\S{1,50}$")
DURATION_PATTERN = re.compile(r"^([1-9][0-9]{0,6})([dhm])$")
DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
MAX_LIFETIME = timedelta(days=36_600)
NEVER = "never"
DEFAULT_EXPIRES_IN = "90d"
# rendered to text once: psycopg renders a composed statement again on every execute
_COUNTER = sql.SQL("SELECT counter FROM {}").format(ident(REVOCATIONS)).as_string()


class TokenError(ValueError):
    """A token that cannot be created as asked (bad role, name or ministry; duplicate name)."""


class TokenRefused(Exception):
    """A token that does not authenticate: `reason` is "expired" or "unknown or revoked"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_lifetime(text: str) -> timedelta | None:
    """A token lifetime: `90d`, `12h`, `30m` (at most 100 years), or `never` (None)."""
    value = text.strip().lower()
    if value == NEVER:
        return None
    match = DURATION_PATTERN.fullmatch(value)
    if match is None:
        raise TokenError(f"a lifetime reads like 90d, 12h or 30m, or {NEVER}; not {text!r}")
    lifetime = timedelta(**{DURATION_UNITS[match.group(2)]: int(match.group(1))})
    if lifetime > MAX_LIFETIME:
        raise TokenError(f"a lifetime is at most {MAX_LIFETIME.days}d (or {NEVER})")
    return lifetime


DEFAULT_LIFETIME = parse_lifetime(DEFAULT_EXPIRES_IN)


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
    expires_at: datetime | None = None

    @property
    def actor(self) -> str:
        """The actor recorded on the events of the commands sent with this token."""
        return f"token:{self.name}"

    @property
    def active(self) -> bool:
        """Neither revoked nor expired."""
        return self.revoked_at is None and not self.expired()

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the token's lifetime is over (never, for a token without expiry)."""
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))


def token_hash(token: str) -> str:
    """The stored form of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class CheckedTokens:
    """Tokens this process checked recently: (record, revocation counter, when), by hash."""

    def __init__(self, ttl_s: float, entries: int = CACHE_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.entries = entries
        self._lock = threading.Lock()
        self._checked: dict[str, tuple[TokenRecord, int, float]] = {}

    def get(self, digest: str, counter: int) -> TokenRecord | None:
        """The record checked under this revocation counter less than ttl_s ago, else None."""
        with self._lock:
            found = self._checked.get(digest)
        if found is None:
            return None
        record, seen_counter, at = found
        if seen_counter != counter or time.monotonic() - at >= self.ttl_s:
            return None
        return record

    def put(self, digest: str, counter: int, record: TokenRecord) -> None:
        with self._lock:
            if len(self._checked) >= self.entries:
                self._checked.clear()
            self._checked[digest] = (record, counter, time.monotonic())


class TokenStore:
    """Create, list, revoke and check tokens; `cache_s` > 0 reuses checks (see the module)."""

    def __init__(self, db: Database, *, cache_s: float = 0.0) -> None:
        self.db = db
        self.cache = CheckedTokens(cache_s) if cache_s > 0 else None

    def create_table(self) -> None:
        """Create the table if it is absent."""
        ddl = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            " id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL,"
            " ministries TEXT NOT NULL, hash TEXT NOT NULL, created_at TEXT NOT NULL,"
            " revoked_at TEXT, created_by TEXT, expires_at TEXT)"
        ).format(ident(TABLE))

        counter = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (id INTEGER PRIMARY KEY CHECK (id = 1),"
            " counter BIGINT NOT NULL)"
        ).format(ident(REVOCATIONS))
        first = sql.SQL("INSERT INTO {} (id, counter) VALUES (1, 0) ON CONFLICT DO NOTHING")

        def setup(tx: Tx) -> None:
            tx.execute(ddl)
            self._add_expiry_column(tx)
            tx.execute(counter)
            tx.execute(first.format(ident(REVOCATIONS)))
            self._add_change_trigger(tx)

        run_ddl(self.db, setup)

    @staticmethod
    def _add_expiry_column(tx: Tx) -> None:
        """Databases made before tokens expired lack `expires_at`: add it (NULL: no expiry)."""
        table = ident(TABLE)
        if tx.dialect == "postgres":
            tx.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS expires_at TEXT").format(table)
            )
            return
        columns = {row["name"] for row in tx.fetch(sql.SQL("PRAGMA table_info({})").format(table))}
        if "expires_at" not in columns:
            tx.execute(sql.SQL("ALTER TABLE {} ADD COLUMN expires_at TEXT").format(table))

    def _add_change_trigger(self, tx: Tx) -> None:
        """Every UPDATE or DELETE of a token row raises the revocation counter, in its own
        transaction (names qualified: an operator's session may have another search_path)."""
        if tx.dialect == "sqlite":
            for kind in ("UPDATE", "DELETE"):
                tx.execute(
                    sql.SQL(
                        "CREATE TRIGGER IF NOT EXISTS {} AFTER {} ON {}"
                        " BEGIN UPDATE {} SET counter = counter + 1; END"
                    ).format(
                        ident(f"{TABLE}_{kind.lower()}d"),
                        sql.SQL(kind),
                        ident(TABLE),
                        ident(REVOCATIONS),
                    )
                )
            return
        schema = self.db.schema
        function = sql.Identifier(schema, "panorama_token_changed")
        tx.execute(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN UPDATE {} SET counter = counter + 1; RETURN NULL; END $$"
            ).format(function, sql.Identifier(schema, REVOCATIONS))
        )
        tx.execute(
            sql.SQL(
                "CREATE OR REPLACE TRIGGER api_tokens_changed AFTER UPDATE OR DELETE ON {}"
                " FOR EACH STATEMENT EXECUTE FUNCTION {}()"
            ).format(sql.Identifier(schema, TABLE), function)
        )

    def create(
        self,
        role: str,
        *,
        ministries: tuple[str, ...] | list[str] = (),
        name: str | None = None,
        created_by: str | None = None,
        lifetime: timedelta | None = DEFAULT_LIFETIME,
    ) -> tuple[TokenRecord, str]:
        """Create a token that expires after `lifetime` (None: never); its record and the
        token itself (shown once, never stored)."""
        if role not in ROLES:
            raise TokenError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if lifetime is not None and not timedelta(0) < lifetime <= MAX_LIFETIME:
            raise TokenError(f"a lifetime is positive and at most {MAX_LIFETIME.days}d")
        codes = tuple(dict.fromkeys(canonical_ministry(code) for code in ministries))
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
        expires = None if lifetime is None else now + lifetime
        insert = sql.SQL(
            "INSERT INTO {} (id, name, role, ministries, hash, created_at, created_by, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
        ).format(ident(TABLE))
        params = (token_id, name, role, json.dumps(list(codes)), token_hash(token))
        stamps = (now.isoformat(), created_by, expires.isoformat() if expires else None)
        with self.db.transaction() as tx:
            if tx.execute(insert, (*params, *stamps)) != 1:
                raise TokenError(f"a token named {name!r} already exists (names are never reused)")
        record = TokenRecord(token_id, name, role, codes, now, None, created_by, expires)
        return record, token

    def authenticate(self, token: str) -> TokenRecord:
        """The active token's record; TokenRefused says why not ("expired" only for a token
        whose secret is right, so a wrong secret learns nothing)."""
        match = TOKEN_PATTERN.fullmatch(token)
        if match is None:
            raise TokenRefused("unknown or revoked")
        if self.cache is None:
            return self._check(token, match.group(1))
        # Read before the check: a revocation committed after this read raises the counter.
        counter = self._revocations()
        digest = token_hash(token)
        record = self.cache.get(digest, counter)
        if record is None:
            record = self._check(token, match.group(1))
            self.cache.put(digest, counter, record)
        elif record.expired():
            raise TokenRefused("expired")
        return record

    def _revocations(self) -> int:
        row = self.db.quick(_COUNTER)  # on every request: composed once
        return -1 if row is None else int(row["counter"])

    def _check(self, token: str, token_id: str) -> TokenRecord:
        select = sql.SQL("SELECT * FROM {} WHERE id = %s").format(ident(TABLE))
        with self.db.transaction(write=False) as tx:
            row = tx.fetchone(select, (token_id,))
        if row is None or not hmac.compare_digest(str(row["hash"]), token_hash(token)):
            raise TokenRefused("unknown or revoked")
        record = _record(row)
        if record.revoked_at is not None:
            raise TokenRefused("unknown or revoked")
        if record.expired():
            raise TokenRefused("expired")
        return record

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
        with self.db.transaction() as tx:  # the trigger raises the revocation counter
            tx.execute(update.format(ident(TABLE)), (datetime.now(UTC).isoformat(), token_id))
            row = tx.fetchone(select, (token_id,))
        return None if row is None else _record(row)

    def records(self) -> list[TokenRecord]:
        """Every token, active or revoked, oldest first."""
        select = sql.SQL("SELECT * FROM {} ORDER BY created_at, id").format(ident(TABLE))
        with self.db.transaction(write=False) as tx:
            return [_record(row) for row in tx.fetch(select)]

    def has_active(self, role: str) -> bool:
        """Whether some token of this role is neither revoked nor expired."""
        select = sql.SQL("SELECT * FROM {} WHERE role = %s AND revoked_at IS NULL").format(
            ident(TABLE)
        )
        with self.db.transaction(write=False) as tx:
            return any(_record(row).active for row in tx.fetch(select, (role,)))


def _record(row: Row) -> TokenRecord:
    created = as_ts(row["created_at"])
    assert created is not None
    return TokenRecord(
        id=str(row["id"]),
        name=str(row["name"]),
        role=str(row["role"]),
        ministries=tuple(canonical_ministry(code) for code in json.loads(row["ministries"])),
        created_at=created,
        revoked_at=as_ts(row["revoked_at"]),
        created_by=row["created_by"],
        expires_at=as_ts(row.get("expires_at")),
    )
