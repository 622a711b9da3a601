"""`panorama tokens create|list|revoke`, and the admin token of a first `make run`."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from service.app import create_app
from service.bootstrap import bootstrap, make_database
from service.cli import main
from service.cli_tokens import ensure_first_admin
from service.config import Settings
from service.tokens import TABLE, TokenStore
from tests.e2e.conftest import bearer


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'panorama.sqlite3'}"


def run(database_url: str, *args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env={"DATABASE_URL": database_url})
    return result


def test_create_prints_the_token_once_and_list_never_shows_it(database_url: str) -> None:
    created = run(database_url, "tokens", "create", "--role", "manager", "--ministry", "MJ")
    assert created.exit_code == 0, created.output
    lines = dict(line.split(":", 1) for line in created.stdout.splitlines())
    token, token_id = lines["token"].strip(), lines["id"].strip()
    assert token.startswith("pnr_") and token_id in token

    listed = run(database_url, "tokens", "list", "--json")
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["role"], row["ministries"], row["revoked_at"]) == (
        token_id,
        "manager",
        ["MJ"],
        None,
    )
    plain = run(database_url, "tokens", "list")
    for output in (listed.stdout, plain.stdout):
        assert token.split("_", 2)[2] not in output

    services = bootstrap(Settings(database_url=database_url))
    try:
        client = create_app(services).test_client()
        assert client.get("/api/projects", headers=bearer(token)).status_code == 200
        assert run(database_url, "tokens", "revoke", token_id).exit_code == 0
        assert client.get("/api/projects", headers=bearer(token)).status_code == 401
    finally:
        services.close()
    assert json.loads(run(database_url, "tokens", "list", "--json").stdout)[0]["revoked_at"]


@pytest.mark.parametrize(
    "args",
    [
        ["--role", "root"],
        ["--role", "manager"],  # a manager needs a ministry
        ["--role", "auditor", "--ministry", "MJ"],
        ["--role", "admin", "--name", "two words"],
    ],
)
def test_create_refuses_a_bad_request(database_url: str, args: list[str]) -> None:
    result = run(database_url, "tokens", "create", *args)
    assert result.exit_code == 2, result.output


def test_names_are_unique_and_an_unknown_id_cannot_be_revoked(database_url: str) -> None:
    assert run(database_url, "tokens", "create", "--role", "admin", "--name", "ops").exit_code == 0
    again = run(database_url, "tokens", "create", "--role", "auditor", "--name", "ops")
    assert again.exit_code == 2 and "already exists" in again.output
    assert run(database_url, "tokens", "revoke", "0123456789abcdef").exit_code == 1


def test_a_first_start_of_the_embedded_default_creates_an_admin_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()  # the embedded default: var/panorama.sqlite3 under the cwd
    db = make_database(settings)
    try:
        token = ensure_first_admin(settings, db)
        assert token is not None
        shown = capsys.readouterr().err
        assert token in shown and "Authorization: Bearer $TOKEN" in shown
        path = tmp_path / "var" / "admin-token"
        assert path.read_text().strip() == token
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert ensure_first_admin(settings, db) is None  # only once
        [first] = TokenStore(db).records()
        assert first.expires_at is not None  # TOKEN_EXPIRES_IN, 90 days by default
        with db.transaction() as tx:  # 90 days later
            tx.execute(f"UPDATE {TABLE} SET expires_at = %s", ("2000-01-01T00:00:00+00:00",))  # noqa: S608
        again = ensure_first_admin(settings, db)
        assert again is not None and again != token
        assert path.read_text().strip() == again
    finally:
        db.close()
    other = Settings(database_url=f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}")
    elsewhere = make_database(other)
    try:
        assert ensure_first_admin(other, elsewhere) is None  # not the embedded default
    finally:
        elsewhere.close()


def _listed(database_url: str) -> dict[str, dict[str, object]]:
    listed = run(database_url, "tokens", "list", "--json")
    assert listed.exit_code == 0, listed.output
    return {row["name"]: row for row in json.loads(listed.stdout)}


def test_create_sets_an_expiry_shown_by_list(database_url: str) -> None:
    before = datetime.now(UTC)
    for name, args in (
        ("default", []),
        ("hours", ["--expires-in", "12h"]),
        ("minutes", ["--expires-in", "30m"]),
        ("forever", ["--expires-in", "never"]),
    ):
        created = run(database_url, "tokens", "create", "--role", "auditor", "--name", name, *args)
        assert created.exit_code == 0, created.output
        assert "expires:" in created.stdout
    rows = _listed(database_url)
    after = datetime.now(UTC)
    for name, lifetime in (
        ("default", timedelta(days=90)),
        ("hours", timedelta(hours=12)),
        ("minutes", timedelta(minutes=30)),
    ):
        expires = datetime.fromisoformat(str(rows[name]["expires_at"]))
        assert expires.utcoffset() == timedelta(0)
        assert before + lifetime <= expires <= after + lifetime, name
    assert rows["forever"]["expires_at"] is None
    plain = run(database_url, "tokens", "list").stdout
    assert "expires" in plain.splitlines()[0]
    assert "never" in next(line for line in plain.splitlines() if "forever" in line)


def test_token_expires_in_sets_the_default_lifetime(database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "TOKEN_EXPIRES_IN": "7d"}
    before = datetime.now(UTC)
    created = CliRunner().invoke(
        main, ["tokens", "create", "--role", "admin", "--name", "a"], env=env
    )
    assert created.exit_code == 0, created.output
    expires = datetime.fromisoformat(str(_listed(database_url)["a"]["expires_at"]))
    assert before + timedelta(days=7) <= expires <= datetime.now(UTC) + timedelta(days=7)


@pytest.mark.parametrize("lifetime", ["0d", "90", "90x", "-1d", "1.5d", "36601d", "forever", ""])
def test_create_refuses_a_bad_lifetime(database_url: str, lifetime: str) -> None:
    result = run(database_url, "tokens", "create", "--role", "admin", "--expires-in", lifetime)
    assert result.exit_code == 2, result.output
    assert "lifetime" in result.output
    assert _listed(database_url) == {}


def test_ministry_codes_of_a_token_are_trimmed_and_upper_cased(database_url: str) -> None:
    created = run(
        database_url, "tokens", "create", "--role", "manager", "--name", "m",
        "--ministry", " mj", "--ministry", "MJ", "--ministry", "MAr",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert _listed(database_url)["m"]["ministries"] == ["MJ", "MAR"]
