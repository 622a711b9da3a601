"""Configuration, read from the environment only (see .env.example)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from service.tokens import DEFAULT_EXPIRES_IN, parse_lifetime
from workers.webhook_policy import WebhookPolicy

DEFAULT_DATABASE_URL = "sqlite:///var/panorama.sqlite3"  # under PANORAMA_HOME (default_home)
SQLITE_RECORDER = "projections.recorders:SQLiteRecorder"
POSTGRES_RECORDER = "projections.recorders:PostgresRecorder"


def default_home(given: str | None) -> Path:
    """Where the embedded default keeps var/: PANORAMA_HOME if given, else the source checkout
    this code runs from (the directory of pyproject.toml), else ~/.local/share/panorama."""
    if given:
        return Path(given).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "service").is_dir():
        return checkout
    return Path.home() / ".local" / "share" / "panorama"


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "y", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    database_url: str = DEFAULT_DATABASE_URL
    database_schema: str = "public"
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # gunicorn: 2 processes of 8 threads, measured on 2 cores (docs/benchmarks.md, "gunicorn")
    web_workers: int = 2
    web_threads: int = 8
    public_read: bool = True
    max_body_bytes: int = 1_000_000
    min_position_wait_s: float = 5.0
    db_pool_size: int = 5
    # ping each event-store connection before use (the library retries a lost one anyway)
    db_pre_ping: bool = False
    log_level: str = "INFO"
    projection_batch_size: int = 2000
    # aggregates kept decoded per process (fast-forwarded from the store on every load); 0: none
    aggregate_cache_size: int = 1000
    # snapshot each aggregate every domain.application.SNAPSHOT_INTERVAL events (cold loads)
    aggregate_snapshots: bool = True
    # seconds a process may reuse a checked token while no token was revoked (0: never)
    token_cache_s: float = 5.0
    celery_queue: str = "panorama"
    allow_loopback_webhooks: bool = False
    # host names and CIDRs webhooks may target although not public (docs/alerts.md)
    webhook_allowlist: tuple[str, ...] = ()
    digest_hour_utc: int = 7
    idempotency_lease_s: float = 30.0
    idempotency_ttl_s: float = 7 * 86400.0
    sqlite_lock_timeout_s: int = 5
    # the lifetime of a new token when `panorama tokens create` is not given --expires-in
    token_expires_in: str = DEFAULT_EXPIRES_IN
    smtp_url: str | None = field(default=None, repr=False)
    # base64 of the 32-byte Ed25519 seed that signs hash-chain checkpoints; never printed.
    audit_signing_key: str | None = field(default=None, repr=False)
    # signs the pages' session cookies; absent: generated once under var/ (docs/pages.md)
    secret_key: str | None = field(default=None, repr=False)
    # the portfolio's currency: recorded in the event store on first start, then checked
    currency: str = "EUR"
    theme_css_url: str | None = None  # a deployment's own stylesheet, loaded after ours
    # the embedded default's var/ lives here (None: under the working directory)
    home: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read the settings from `env` (default: os.environ)."""
        e = dict(os.environ if env is None else env)
        url = e.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        schema = e.get("DATABASE_SCHEMA") or _url_schema(url) or "public"
        return cls(
            database_url=url,
            database_schema=schema,
            redis_url=e.get("REDIS_URL") or None,
            host=e.get("PANORAMA_HOST", "127.0.0.1"),
            port=int(e.get("PANORAMA_PORT", "8000")),
            web_workers=int(e.get("WEB_CONCURRENCY", "2")),
            web_threads=int(e.get("WEB_THREADS", "8")),
            public_read=_flag(e.get("PUBLIC_READ"), True),
            max_body_bytes=int(e.get("MAX_BODY_BYTES", "1000000")),
            min_position_wait_s=float(e.get("MIN_POSITION_WAIT_S", "5")),
            db_pool_size=int(e.get("DB_POOL_SIZE", "5")),
            db_pre_ping=_flag(e.get("DB_PRE_PING"), False),
            log_level=e.get("LOG_LEVEL", "INFO"),
            projection_batch_size=int(e.get("PROJECTION_BATCH_SIZE", "2000")),
            aggregate_cache_size=_count(e.get("AGGREGATE_CACHE_SIZE"), 1000),
            aggregate_snapshots=_flag(e.get("AGGREGATE_SNAPSHOTS"), True),
            token_cache_s=_non_negative(e.get("TOKEN_CACHE_SECONDS"), 5.0),
            celery_queue=e.get("CELERY_QUEUE", "panorama"),
            allow_loopback_webhooks=_flag(e.get("ALLOW_LOOPBACK_WEBHOOKS"), False),
            webhook_allowlist=tuple(
                x.strip() for x in e.get("WEBHOOK_ALLOWLIST", "").split(",") if x.strip()
            ),
            digest_hour_utc=_hour(e.get("DIGEST_HOUR_UTC")),
            idempotency_lease_s=_seconds(e.get("IDEMPOTENCY_LEASE_SECONDS"), 30.0),
            idempotency_ttl_s=_seconds(e.get("IDEMPOTENCY_TTL_SECONDS"), 7 * 86400.0),
            sqlite_lock_timeout_s=_whole_seconds(e.get("SQLITE_LOCK_TIMEOUT"), 5),
            token_expires_in=_lifetime(e.get("TOKEN_EXPIRES_IN")),
            smtp_url=e.get("SMTP_URL") or None,
            audit_signing_key=e.get("AUDIT_SIGNING_KEY") or None,
            secret_key=e.get("SECRET_KEY") or None,
            currency=(e.get("PORTFOLIO_CURRENCY") or "EUR").strip().upper(),
            theme_css_url=e.get("THEME_CSS_URL") or None,
            home=default_home(e.get("PANORAMA_HOME")),
        )

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))

    def webhook_policy(self) -> WebhookPolicy:
        """Where webhooks may go, the same in every deployment: public unless allow-listed."""
        return WebhookPolicy(
            allow_loopback=self.allow_loopback_webhooks,
            allowlist=self.webhook_allowlist,
        )

    @property
    def is_memory(self) -> bool:
        return self.database_url.startswith("memory:")

    @property
    def is_embedded_default(self) -> bool:
        """No DATABASE_URL given: SQLite under the home's var/ (`make run`)."""
        return self.database_url == DEFAULT_DATABASE_URL

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file named by a sqlite:/// URL (relative paths from the cwd; the
        embedded default's from the home)."""
        if self.is_embedded_default and self.home is not None:
            return self.home / "var" / "panorama.sqlite3"
        parsed = urlparse(self.database_url)
        path = unquote(parsed.path)
        if self.database_url.startswith("sqlite:////"):
            return Path(path)
        return Path(path.lstrip("/"))

    @property
    def postgres_conninfo(self) -> str:
        """The URL without our own query parameters, for psycopg."""
        parsed = urlparse(self.database_url)
        return parsed._replace(query="").geturl()

    def eventsourcing_env(self) -> dict[str, str]:
        """The eventsourcing library's settings: this database, the aggregate cache, snapshots."""
        return {**self._store_env(), **self._aggregate_env()}

    def _aggregate_env(self) -> dict[str, str]:
        """The library's aggregate cache, always fast-forwarded: a load reads the events other
        processes recorded after the cached version, so the cache never serves a stale state."""
        env = {"IS_SNAPSHOTTING_ENABLED": "y" if self.aggregate_snapshots else "n"}
        if self.aggregate_cache_size > 0:
            env |= {
                "AGGREGATE_CACHE_MAXSIZE": str(self.aggregate_cache_size),
                "AGGREGATE_CACHE_FASTFORWARD": "y",
                "AGGREGATE_CACHE_FASTFORWARD_SKIPPING": "n",
                "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
            }
        return env

    def _store_env(self) -> dict[str, str]:
        if self.is_memory:
            return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
        if self.is_postgres:
            parsed = urlparse(self.database_url)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "APPLICATION_RECORDER_TOPIC": POSTGRES_RECORDER,
                "POSTGRES_DBNAME": (parsed.path or "/postgres").lstrip("/") or "postgres",
                "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(parsed.port or 5432),
                "POSTGRES_USER": unquote(parsed.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(parsed.password or ""),
                "POSTGRES_SCHEMA": self.database_schema,
                "POSTGRES_POOL_SIZE": str(self.db_pool_size),
                "POSTGRES_MAX_OVERFLOW": str(self.db_pool_size * 2),
                "POSTGRES_LOCK_TIMEOUT": "5",
                "POSTGRES_PRE_PING": "y" if self.db_pre_ping else "n",
                "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "10",
            }
        path = self.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "APPLICATION_RECORDER_TOPIC": SQLITE_RECORDER,
            "SQLITE_DBNAME": str(path),
            "SQLITE_LOCK_TIMEOUT": str(self.sqlite_lock_timeout_s),
        }


def _hour(value: str | None) -> int:
    hour = int(value) if value and value.strip() else 7
    if not 0 <= hour <= 23:
        raise ValueError("DIGEST_HOUR_UTC is an hour from 0 to 23")
    return hour


def _seconds(value: str | None, default: float) -> float:
    seconds = float(value) if value and value.strip() else default
    if not seconds > 0:
        raise ValueError(f"a duration in seconds must be positive, not {value!r}")
    return seconds


def _non_negative(value: str | None, default: float) -> float:
    seconds = float(value) if value and value.strip() else default
    if not seconds >= 0:
        raise ValueError(f"a duration in seconds must be zero or more, not {value!r}")
    return seconds


def _count(value: str | None, default: int) -> int:
    count = int(value) if value and value.strip() else default
    if count < 0:
        raise ValueError(f"a count must be zero or more, not {value!r}")
    return count


def _whole_seconds(value: str | None, default: int) -> int:
    seconds = int(value) if value and value.strip() else default
    if seconds < 1:
        raise ValueError(f"a duration in whole seconds must be at least 1, not {value!r}")
    return seconds


def _lifetime(value: str | None) -> str:
    text = (value or "").strip() or DEFAULT_EXPIRES_IN
    try:
        parse_lifetime(text)
    except ValueError as e:
        raise ValueError(f"TOKEN_EXPIRES_IN: {e}") from None
    return text


def _url_schema(url: str) -> str | None:
    values = parse_qs(urlparse(url).query).get("schema")
    return values[0] if values else None
