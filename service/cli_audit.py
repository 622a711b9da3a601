"""`panorama verify`: check the hash chain (and optionally saved checkpoints)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from projections.chain_verify import verify
from projections.verify_log import record
from service.audit_keys import SigningKeyMissing, check_checkpoint, load_signer
from service.bootstrap import Services


def _services(ctx: click.Context) -> Services:
    services: Services = ctx.find_root().obj["services"]
    return services


def _checkpoints(ctx: click.Context, files: tuple[str, ...], as_json: bool) -> bool:
    """Check each saved checkpoint file; True when all are valid."""
    services = _services(ctx)
    try:
        signer = load_signer(services.settings)
    except (SigningKeyMissing, ValueError) as e:
        raise click.ClickException(str(e)) from None
    all_valid = True
    for name in files:
        try:
            with open(name, encoding="utf-8") as f:
                saved: Any = json.load(f)
            if not isinstance(saved, dict):
                raise ValueError("not a JSON object")
            result = check_checkpoint(services.db, services.portfolio, signer, saved)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise click.ClickException(f"{name}: not a checkpoint ({e})") from None
        all_valid = all_valid and bool(result["valid"])
        if as_json:
            click.echo(json.dumps({"file": name, **result}))
        else:
            verdict = "valid" if result["valid"] else "INVALID"
            click.echo(f"checkpoint {name} (position {result['position']}): {verdict}")
            click.echo(f"  {result['detail']}")
    return all_valid


@click.command("verify")
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="also check a saved checkpoint JSON (GET /api/audit/checkpoints/latest); repeatable",
)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def verify_command(ctx: click.Context, checkpoints: tuple[str, ...], as_json: bool) -> None:
    """Recompute the hash chain from the raw events; exit 1 naming the first tampered one."""
    services = _services(ctx)
    report = verify(services.db, services.portfolio)
    record(services.db, report, datetime.now(UTC), "panorama verify")
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        click.echo(
            f"hash chain: {report.checked} events checked up to position {report.position} "
            f"(head {report.head}, {report.not_yet_chained} not yet chained)"
        )
        click.echo(f"chain head: {report.chain_head}")
        finding = report.finding
        if finding is None:
            click.echo("intact: no event was altered, inserted or removed")
        else:
            click.echo(
                f"TAMPERED: event {finding.kind} at position {finding.position}: "
                f"stream {finding.stream_id} version {finding.version}: {finding.detail}"
            )
    valid = _checkpoints(ctx, checkpoints, as_json) if checkpoints else True
    if report.finding is not None or not valid:
        ctx.exit(1)
