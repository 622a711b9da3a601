"""Shared fixtures: settings for a fresh SQLite file or a fresh PostgreSQL schema per test."""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from domain.application import utc_today
from service.bootstrap import Services, bootstrap
from service.config import Settings

PG_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
if not PG_URL.startswith("postgres"):
    PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# The published files, next to the checkout (../shared/data), or where PANORAMA_SHARED_DATA
# says (a clone made elsewhere, e.g. /tmp/x).
SHARED_DATA = Path(
    os.environ.get("PANORAMA_SHARED_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
# Production (PostgreSQL) must be given AUDIT_SIGNING_KEY, so the PostgreSQL settings are.
PG_AUDIT_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31, tests only


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The real PostgreSQL; a failure under CI=true, a skip elsewhere."""
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        _unavailable("PostgreSQL", e)
    return PG_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis; a failure under CI=true, a skip elsewhere."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as e:
        _unavailable("Redis", e)
    return REDIS_URL


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'panorama.sqlite3'}")


@pytest.fixture
def pg_settings(pg_url: str, pg_schema: str) -> Settings:
    return Settings(database_url=pg_url, database_schema=pg_schema, audit_signing_key=PG_AUDIT_KEY)


# The PostgreSQL half of every test run on both stores is an integration test.
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]
# Tests that ask for these are integration tests too (see pytest_collection_modifyitems).
SERVICE_FIXTURES = frozenset({"pg_url", "pg_schema", "pg_settings", "redis_url"})
INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"
BROWSER_DIR = Path(__file__).resolve().parent / "browser"
# e2e modules that start real processes of their own (servers, the CLI under load)
PROCESS_MODULES = {
    "test_embedded_serve.py",
    "test_import_hostile_files.py",
    "test_log_redaction.py",
    "test_readme.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `integration` every test that needs PostgreSQL, Redis, Celery worker processes, a
    browser or server processes of its own, so `make test-fast` (-m "not integration") runs
    the rest, in-process, without any of them."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        path = item.path
        if (
            path.is_relative_to(INTEGRATION_DIR)
            or path.is_relative_to(BROWSER_DIR)
            or path.name in PROCESS_MODULES
            or fixtures & SERVICE_FIXTURES
        ):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The same test on the embedded SQLite store and on the real PostgreSQL."""
    if request.param == "sqlite":
        return Settings(database_url=f"sqlite:///{tmp_path / 'panorama.sqlite3'}")
    url: str = request.getfixturevalue("pg_url")
    schema: str = request.getfixturevalue("pg_schema")
    return Settings(database_url=url, database_schema=schema, audit_signing_key=PG_AUDIT_KEY)


@pytest.fixture
def make_services() -> Iterator[Callable[..., Services]]:
    """Build Services for given settings; everything built is closed at the end."""
    built: list[Services] = []

    def make(settings: Settings, today: Callable[[], date] = utc_today) -> Services:
        services = bootstrap(settings, today=today)
        built.append(services)
        return services

    yield make
    for services in built:
        services.close()


@pytest.fixture
def services(settings: Settings, make_services: Callable[..., Services]) -> Services:
    return make_services(settings)


# -- no secret in the logs, over the whole suite -------------------------------------------
TOKEN_PATTERN = re.compile(r"pnr_[0-9a-f]{16}_[A-Za-z0-9_-]+")
KNOWN_SECRETS = (PG_AUDIT_KEY,)


class _LogCapture(logging.Handler):
    """Keeps every log line emitted in this process, at every level."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted cannot leak either
            self.lines.append(str(record.msg))


@pytest.fixture(scope="session", autouse=True)
def no_secret_is_ever_logged() -> Iterator[None]:
    """Every log line of the suite is scanned for tokens and signing keys at the end."""
    capture = _LogCapture()
    capture.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    yield
    root.removeHandler(capture)
    root.setLevel(previous)
    leaks = [
        line
        for line in capture.lines
        if TOKEN_PATTERN.search(line) or any(secret in line for secret in KNOWN_SECRETS)
    ]
    assert not leaks, f"{len(leaks)} log lines carry a secret, e.g. {leaks[0][:200]!r}"
