"""The `panorama` console script: everything an operator does."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, date, datetime
from typing import Any

import click

from service.bootstrap import ConfigurationError, Services, bootstrap
from service.cli_audit import verify_command
from service.cli_tokens import ensure_first_admin, tokens
from service.config import Settings


def _services(ctx: click.Context) -> Services:
    services: Services = ctx.find_root().obj["services"]
    return services


READ_COMMANDS = frozenset(
    {"export", "verify", "projections status", "projections rebuild", "tokens list"}
)


def require_database(settings: Settings, command: str) -> None:
    """A read command never creates an empty embedded database: exit 1 saying where it looked."""
    if settings.is_postgres or settings.is_memory or settings.sqlite_path.exists():
        return
    where = "PANORAMA_HOME" if settings.is_embedded_default else "DATABASE_URL"
    raise click.ClickException(
        f"no Panorama database at {settings.sqlite_path} (from {where}); `{command}` reads one"
        " and will not create it. Run `panorama serve` or `panorama import` first, or set"
        " PANORAMA_HOME (or DATABASE_URL) to where the database is."
    )


class LazyServices(dict[str, Any]):
    """A click context object that builds the Services only when a command needs them.

    A read command (READ_COMMANDS) refuses to run without an existing database.
    """

    def __init__(self, ctx: click.Context) -> None:
        super().__init__()
        self._ctx = ctx

    def __missing__(self, key: str) -> Any:
        if key != "services":
            raise KeyError(key)
        settings = Settings.from_env()
        path = click.get_current_context().command_path.split(" ", 1)
        command = path[1] if len(path) > 1 else ""
        if command in READ_COMMANDS:
            require_database(settings, f"panorama {command}")
        try:
            services = bootstrap(settings)
        except ConfigurationError as e:
            raise click.ClickException(str(e)) from None
        self._ctx.call_on_close(services.close)
        self[key] = services
        return services


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Panorama: an event-sourced portfolio of major digital projects."""
    ctx.obj = LazyServices(ctx)


@main.command()
@click.option("--host", default=None, help="default: PANORAMA_HOST or 127.0.0.1")
@click.option("--port", type=int, default=None, help="default: PANORAMA_PORT or 8000")
@click.option("--workers", type=int, default=None, help="default: WEB_CONCURRENCY")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API with gunicorn (settings from the environment)."""
    from service.bootstrap import make_database
    from service.gunicorn_app import run

    settings = Settings.from_env()
    if settings.is_embedded_default:  # `make run`
        db = make_database(settings)
        try:
            ensure_first_admin(settings, db)
        finally:
            db.close()
    run(settings, host=host, port=port, workers=workers)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Start a Celery worker (extra arguments go to `celery worker`)."""
    from workers.main import worker_app

    worker_app().worker_main(["worker", "--loglevel=INFO", *ctx.args])


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def beat(ctx: click.Context) -> None:
    """Start Celery beat: the periodic catch-up safety net."""
    from workers.main import worker_app

    worker_app().start(["beat", "--loglevel=INFO", *ctx.args])


@main.group()
def projections() -> None:
    """Inspect and rebuild the read models."""


@projections.command("status")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def projections_status(ctx: click.Context, as_json: bool) -> None:
    """Position, lag and last error of every projection."""
    from projections.catchup import status

    services = _services(ctx)
    rows = status(services.db, services.portfolio)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "position": r.position,
                        "head": r.head,
                        "lag": r.lag,
                        "updated_at": r.updated_at.isoformat() if r.updated_at else None,
                        "last_error": r.last_error,
                    }
                    for r in rows
                ]
            )
        )
        return
    click.echo(f"{'projection':<28} {'position':>10} {'head':>10} {'lag':>8}  last error")
    for r in rows:
        error = f"{r.last_error} ({r.error_at:%Y-%m-%d %H:%M}Z)" if r.last_error else "-"
        click.echo(f"{r.name:<28} {r.position:>10} {r.head:>10} {r.lag:>8}  {error}")


@projections.command("rebuild")
@click.option("--batch-size", type=int, default=2000, show_default=True)
@click.option(
    "--processes",
    type=click.IntRange(1, 16),
    default=None,
    help="parallel replay processes (PostgreSQL only; default: one per core)",
)
@click.pass_context
def projections_rebuild(ctx: click.Context, batch_size: int, processes: int | None) -> None:
    """Replay every event into fresh tables, then swap them in atomically."""
    from tqdm import tqdm

    from projections.rebuild import rebuild
    from service.bootstrap import store_opener

    services = _services(ctx)
    started = datetime.now(UTC)
    with tqdm(unit="ev", desc="rebuild", file=sys.stderr, dynamic_ncols=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        count = rebuild(
            services.db,
            services.portfolio,
            progress=progress,
            batch_size=batch_size,
            processes=processes or os.cpu_count() or 1,
            open_store=store_opener(services.settings),
        )
    seconds = (datetime.now(UTC) - started).total_seconds()
    click.echo(f"rebuilt project_states from {count} notifications in {seconds:.1f}s")


@main.command()
@click.argument("what", type=click.Choice(["projects", "summary", "changes"]))
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--from", "after", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--to", "until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.pass_context
def export(
    ctx: click.Context,
    what: str,
    as_of: datetime | None,
    after: datetime | None,
    until: datetime | None,
) -> None:
    """Write the projects, the summary or the changes as CSV to standard output."""
    from projections import queries
    from projections.catchup import position
    from service import csv_export

    services = _services(ctx)
    day: date = as_of.date() if as_of else datetime.now(UTC).date()
    currency = services.settings.currency
    with services.db.transaction(write=False) as tx:
        at = position(tx)
        if what == "projects":
            body = csv_export.projects_csv(queries.list_projects(tx, day, None), currency)
        elif what == "summary":
            body = csv_export.summary_csv(queries.summary(tx, day, None), currency)
        else:
            if after is None or until is None:
                raise click.UsageError("changes needs --from and --to")
            every = queries.each_change(tx, after.date(), until.date(), None)
            body = csv_export.changes_csv(every, currency)
    click.echo(f"# as_of={day.isoformat()} position={at}", err=True)
    click.echo(body, nl=False)


def _add_import_group() -> None:
    try:
        from service.cli_import import import_group
    except ImportError:  # pragma: no cover - the importers are optional during development
        return
    main.add_command(import_group, "import")


_add_import_group()
main.add_command(tokens)
main.add_command(verify_command)
