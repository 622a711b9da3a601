"""`panorama tokens ...`: create, list and revoke the API's bearer tokens."""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path

import click

from projections.db import Database
from service.bootstrap import Services
from service.config import Settings
from service.tokens import ROLES, TokenError, TokenRecord, TokenStore, parse_lifetime

FIRST_ADMIN = "first-admin"


def _store(ctx: click.Context) -> TokenStore:
    services: Services = ctx.find_root().obj["services"]
    store = TokenStore(services.db)
    store.create_table()
    return store


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in some containers
        return "cli"


@click.group("tokens")
def tokens() -> None:
    """Create, list and revoke API tokens (shown once, stored only as hashes)."""


@tokens.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option(
    "--ministry", "ministries", multiple=True, help="a ministry code a manager may change"
)
@click.option("--name", default=None, help="recorded as the actor token:<name> (unique)")
@click.option(
    "--expires-in",
    default=None,
    help="lifetime: 90d, 12h, 30m or never (default: TOKEN_EXPIRES_IN, 90d)",
)
@click.pass_context
def create(
    ctx: click.Context,
    role: str,
    ministries: tuple[str, ...],
    name: str | None,
    expires_in: str | None,
) -> None:
    """Create a token and print it once: it cannot be shown again."""
    services: Services = ctx.find_root().obj["services"]
    try:
        given = services.settings.token_expires_in if expires_in is None else expires_in
        lifetime = parse_lifetime(given)
        record, token = _store(ctx).create(
            role, ministries=ministries, name=name, created_by=_operator(), lifetime=lifetime
        )
    except TokenError as e:
        raise click.UsageError(str(e)) from None
    click.echo(f"id:    {record.id}")
    click.echo(f"name:  {record.name} (events record the actor {record.actor})")
    scope = f" for {', '.join(record.ministries)}" if record.ministries else ""
    click.echo(f"role:  {record.role}{scope}")
    click.echo(f"expires: {_expiry(record)}")
    click.echo(f"token: {token}")
    click.echo("Keep the token now: only its hash is stored, it cannot be shown again.", err=True)


@tokens.command("revoke")
@click.argument("token_id")
@click.pass_context
def revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke a token by its id: it is refused (401) from now on."""
    record = _store(ctx).revoke(token_id)
    if record is None:
        raise click.ClickException(f"no token {token_id!r}")
    click.echo(f"revoked {record.id} ({record.name}) at {record.revoked_at:%Y-%m-%d %H:%M:%S}Z")


def _row(record: TokenRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "name": record.name,
        "role": record.role,
        "ministries": list(record.ministries),
        "created_at": record.created_at.isoformat(),
        "created_by": record.created_by,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
    }


def _expiry(record: TokenRecord) -> str:
    return f"{record.expires_at:%Y-%m-%d %H:%M}Z" if record.expires_at else "never"


def _status(record: TokenRecord) -> str:
    if record.revoked_at:
        return f"revoked {record.revoked_at:%Y-%m-%d %H:%M}Z"
    return "expired" if record.expired() else "active"


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def list_tokens(ctx: click.Context, as_json: bool) -> None:
    """Every token's id, name, role, scope and expiry (never the token nor its hash)."""
    records = _store(ctx).records()
    if as_json:
        click.echo(json.dumps([_row(r) for r in records]))
        return
    click.echo(
        f"{'id':<16}  {'name':<24} {'role':<10} {'ministries':<16} {'created':<17} "
        f"{'expires':<17} status"
    )
    for r in records:
        codes = ",".join(r.ministries) or "-"
        click.echo(
            f"{r.id:<16}  {r.name:<24} {r.role:<10} {codes:<16} "
            f"{r.created_at:%Y-%m-%d %H:%M}Z {_expiry(r):<17} {_status(r)}"
        )


def ensure_first_admin(settings: Settings, db: Database) -> str | None:
    """On the embedded default with no active admin token: create one, print it, keep it.

    The token goes to standard error with a curl example, and to var/admin-token (mode 600).
    Returns the token, or None when nothing was done.
    """
    if not settings.is_embedded_default:
        return None
    store = TokenStore(db)
    store.create_table()
    if store.has_active("admin"):
        return None
    lifetime = parse_lifetime(settings.token_expires_in)
    try:
        record, token = store.create(
            "admin", name=FIRST_ADMIN, created_by="panorama serve", lifetime=lifetime
        )
    except TokenError:  # a revoked or expired first-admin keeps its name
        record, token = store.create("admin", created_by="panorama serve", lifetime=lifetime)
    path = settings.sqlite_path.parent / "admin-token"
    _write_private(path, token + "\n")
    url = f"http://{settings.host}:{settings.port}/api/projects"
    body = '{"name": "SI paie", "ministry_code": "MINARM", "effective_date": "2024-01-15"}'
    print(
        f"\nFirst start: created the admin token {record.name!r} (id {record.id}, expires"
        f" {_expiry(record)}); it is also"
        f" in {path} (mode 600) and will not be shown again:\n\n  {token}\n\n"
        f'  TOKEN=$(cat {path}); curl -s -X POST {url} -H "Authorization: Bearer $TOKEN"'
        f" -H 'Content-Type: application/json' -d '{body}'\n",
        file=sys.stderr,
        flush=True,
    )
    return token


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
