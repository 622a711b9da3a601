"""`panorama import panorama|gmpp|ftap FILE...`: parse everything, record in one transaction."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from importers.errors import ImportConflict, ImportRejected
from importers.ftap import parse_ftap
from importers.ftap_run import import_ftap
from importers.gmpp import parse_gmpp
from importers.headline import read_headlines, sidecar, with_headlines
from importers.matching import load_aliases
from importers.model import Edition
from importers.panorama import parse_panorama
from importers.run import ImportSummary, import_editions

HEADLINE_HELP = (
    "CSV of the headline figures published with each edition (edition_ref, projects, ...); "
    "default: editions_summary.csv or FILE.headline.csv next to the file."
)
STRICT_HELP = (
    "Refuse amounts finer than a cent, unit headers and id columns outside the known "
    "spellings, and rows without an id, instead of reading them with a warning."
)
FILES = click.Path(exists=True, dir_okay=False, path_type=Path)
DATE = click.DateTime(formats=["%Y-%m-%d"])


def _services(ctx: click.Context) -> Any:
    """The Services from the context object (or the callable that builds them)."""
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    try:
        # `obj["services"]`, not `.get()`: the console script's LazyServices builds them in
        # `__missing__`, which `dict.get` never calls.
        services = obj["services"]
    except KeyError:
        services = None
    if services is None:
        raise click.ClickException("no services configured for the import commands")
    if callable(services) and not hasattr(services, "portfolio"):
        services = services()
        obj["services"] = services
    return services


def _as_date(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _run(
    ctx: click.Context,
    files: tuple[Path, ...],
    parse: Callable[[Path], list[Edition]],
    *,
    dry_run: bool,
    progress: bool | None,
    headline: Path | None = None,
) -> None:
    show = sys.stderr.isatty() if progress is None else progress
    try:
        editions: list[Edition] = []
        for path in tqdm(files, desc="parse", unit="file", file=sys.stderr, disable=not show):
            parsed = parse(path)
            headlines = headline or sidecar(path)
            if headlines is not None:
                parsed = with_headlines(parsed, read_headlines(headlines))
            editions.extend(parsed)
        services = _services(ctx)
        with tqdm(desc="import", unit="edition", file=sys.stderr, disable=not show) as bar:

            def tick(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            summary = run_import(services, editions, dry_run=dry_run, progress=tick)
    except (ImportRejected, ImportConflict) as e:
        raise click.ClickException(f"import refused, nothing recorded: {e}") from None
    for line in summary.lines():
        click.echo(line)


def run_import(
    services: Any,
    editions: list[Edition],
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Import parsed editions through the Services; after_commit(position) once at the end."""
    summary = import_editions(services.portfolio, editions, dry_run=dry_run, progress=progress)
    if summary.position is not None:
        services.after_commit(summary.position)
    return summary


@click.group("import")
def import_group() -> None:
    """Import published portfolio files (the French panorama, the UK GMPP)."""


@import_group.command("panorama")
@click.argument("files", nargs=-1, required=True, type=FILES)
@click.option("--edition-date", type=DATE, help="Edition date when the file has none.")
@click.option("--aliases", type=FILES, help="CSV (alias,canonical) or YAML of renamed projects.")
@click.option("--dry-run", is_flag=True, help="Parse and plan, record nothing.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr.")
@click.option("--headline", type=FILES, help=HEADLINE_HELP)
@click.option("--strict", is_flag=True, help=STRICT_HELP)
@click.pass_context
def panorama_command(
    ctx: click.Context,
    files: tuple[Path, ...],
    edition_date: datetime | None,
    aliases: Path | None,
    dry_run: bool,
    progress: bool | None,
    headline: Path | None,
    strict: bool,
) -> None:
    """Import panorama editions (official layout, CSV or XLSX, or the consolidated layout)."""
    try:
        table = load_aliases(aliases)
    except ImportRejected as e:
        raise click.ClickException(f"import refused, nothing recorded: {e}") from None
    forced = _as_date(edition_date)

    def parse(path: Path) -> list[Edition]:
        return parse_panorama(path, edition_date=forced, aliases=table, strict=strict)

    _run(ctx, files, parse, dry_run=dry_run, progress=progress, headline=headline)


@import_group.command("gmpp")
@click.argument("files", nargs=-1, required=True, type=FILES)
@click.option("--year", help="Financial year, e.g. 2020-21 (default: from the file name).")
@click.option("--snapshot-date", type=DATE, help="Snapshot date (default: 31 March of the year).")
@click.option("--dry-run", is_flag=True, help="Parse and plan, record nothing.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr.")
@click.option("--headline", type=FILES, help=HEADLINE_HELP)
@click.option("--strict", is_flag=True, help=STRICT_HELP)
@click.pass_context
def gmpp_command(
    ctx: click.Context,
    files: tuple[Path, ...],
    year: str | None,
    snapshot_date: datetime | None,
    dry_run: bool,
    progress: bool | None,
    headline: Path | None,
    strict: bool,
) -> None:
    """Import GMPP annual files (2019-20 to 2024-25 layouts, the transposed one included)."""
    snapshot = _as_date(snapshot_date)

    def parse(path: Path) -> list[Edition]:
        return [parse_gmpp(path, year=year, snapshot=snapshot, strict=strict)]

    _run(ctx, files, parse, dry_run=dry_run, progress=progress, headline=headline)


@import_group.command("ftap")
@click.argument("awards", type=FILES)
@click.option("--programme", "programme", type=FILES, required=True, help="The figures file.")
@click.option("--aliases", type=FILES, help="CSV (alias,canonical) or YAML of renamed projects.")
@click.option("--fund", default="FTAP", show_default=True, help="The fund's name.")
@click.option("--currency", default="EUR", show_default=True, help="The amounts' currency.")
@click.option("--dry-run", is_flag=True, help="Parse and plan, record nothing.")
@click.pass_context
def ftap_command(
    ctx: click.Context,
    awards: Path,
    programme: Path,
    aliases: Path | None,
    fund: str,
    currency: str,
    dry_run: bool,
) -> None:
    """Import FTAP laureates (AWARDS) and published envelopes and totals (--programme)."""
    try:
        table = load_aliases(aliases)
        services = _services(ctx)
        portfolio = services.portfolio
        files = parse_ftap(awards, programme, fund=fund, currency=currency, today=portfolio.today())
        summary = import_ftap(portfolio, files, aliases=table, dry_run=dry_run)
    except (ImportRejected, ImportConflict) as e:
        raise click.ClickException(f"import refused, nothing recorded: {e}") from None
    if summary.position is not None:
        services.after_commit(summary.position)
    for line in summary.lines():
        click.echo(line)
