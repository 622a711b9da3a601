"""Helpers for the hash-chain tests: a history of a few dozen events, raw SQL on the store."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from flask.testing import FlaskClient
from psycopg import sql

from domain.application import Provenance
from projections.db import Row, ident
from service.bootstrap import Services
from tests.histories import BASE, Step, apply_step, register_projects

KEY = base64.b64encode(bytes(range(32))).decode()  # a test-only Ed25519 seed
KINDS = ("cost", "schedule", "phase", "status", "cost", "withhold", "disclose", "award")


def write_history(services: Services, steps: int, *, start: int = 0) -> int:
    """Register 4 projects and a programme (when start == 0), then `steps` commands.

    Returns the last notification position. The trigger is called as commands do.
    """
    portfolio = services.portfolio
    if start == 0:
        register_projects(portfolio)
        portfolio.create_programme(
            name="FTAP",
            envelope=Decimal("1e12"),
            provenance=Provenance(BASE, "tester", "test"),
        )
    ids = streams(services, ":Project.Registered")
    programme = streams(services, ":FundingProgramme.Created")[0]
    for n in range(start, start + steps):
        step = Step(
            0,
            KINDS[n % len(KINDS)],
            (n * 53) % 1500,
            (Decimal(5000 + n), "Déploiement", "Amber", True),
            0,
        )
        apply_step(portfolio, [ids[(n * 3) % len(ids)]] * 4, programme, step)
    head = int(portfolio.recorder.max_notification_id() or 0)
    services.after_commit(head)
    return head


def table(services: Services) -> sql.Identifier:
    name: str = services.portfolio.recorder.events_table_name  # type: ignore[attr-defined]
    return ident(name)


def id_column(services: Services) -> sql.Composable:
    return sql.SQL("notification_id" if services.db.dialect == "postgres" else "rowid")


def streams(services: Services, topic_suffix: str) -> list[UUID]:
    """The streams whose first event's topic ends with `topic_suffix`, in order."""
    return [
        UUID(str(r["originator_id"]))
        for r in events(services)
        if str(r["topic"]).endswith(topic_suffix)
    ]


REFERENCE_TOPICS = ("domain.ministry:", "domain.currency:")


def events(services: Services) -> list[Row]:
    """Every stored event but the reference data recorded at start-up, raw, in order."""
    return [r for r in all_events(services) if not str(r["topic"]).startswith(REFERENCE_TOPICS)]


def all_events(services: Services) -> list[Row]:
    """Every stored event, raw, in notification order."""
    with services.db.transaction(write=False) as tx:
        return tx.fetch(
            sql.SQL(
                "SELECT {col} AS notification_id, originator_id, originator_version, topic, state "
                "FROM {tbl} ORDER BY {col}"
            ).format(col=id_column(services), tbl=table(services))
        )


def execute(services: Services, query: sql.Composable, params: Sequence[Any] = ()) -> int:
    """Tamper with the store by hand, in one committed transaction."""
    with services.db.transaction() as tx:
        return tx.execute(query, params)


def change_byte(services: Services, event: Row, offset: int, value: int) -> None:
    """Overwrite one byte of an event's stored state."""
    state = bytearray(bytes(event["state"]))
    assert state[offset] != value
    if services.db.dialect == "postgres":
        query = sql.SQL(
            "UPDATE {tbl} SET state = overlay(state placing %s from %s for 1) "
            "WHERE notification_id = %s"
        ).format(tbl=table(services))
        params: tuple[Any, ...] = (bytes([value]), offset + 1, event["notification_id"])
    else:
        state[offset] = value
        query = sql.SQL("UPDATE {tbl} SET state = %s WHERE rowid = %s").format(tbl=table(services))
        params = (bytes(state), event["notification_id"])
    assert execute(services, query, params) == 1


def actor_offset(event: Row) -> int:
    """The offset of a byte inside the actor's name: changing it keeps the state decodable."""
    return bytes(event["state"]).index(b'"actor":"tester"') + len(b'"actor":"')


def finding_of(event: Row, kind: str, version: int | None = None) -> dict[str, Any]:
    """The (kind, position, stream id, version) a verification must name for `event`."""
    return {
        "kind": kind,
        "position": int(event["notification_id"]),
        "stream_id": str(UUID(str(event["originator_id"]))),
        "version": int(event["originator_version"]) if version is None else version,
    }


def audit_client(services: Services, role: str = "auditor") -> FlaskClient:
    """A test client of the app carrying a token of `role` (when the app has tokens)."""
    from service.app import create_app

    client = create_app(services).test_client()
    try:
        from service.tokens import TokenStore
    except ImportError:  # before authentication: every route is open
        return client
    store = TokenStore(services.db)
    store.create_table()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {store.create(role)[1]}"
    return client
