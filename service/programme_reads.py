"""Funding programme reads, shared by the API and the pages: fold each programme's stream."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from domain.errors import ProgrammeNotFound
from projections import programme_view as view
from projections.programmes import programme_ids


def _events(services: Any, programme_id: UUID) -> list[Any]:
    return list(services.portfolio.programme_events(programme_id))


def _as_of(as_of: date | None) -> date:
    return as_of or datetime.now(UTC).date()


def programme(
    services: Any, programme_id: UUID, as_of: date | None, known_at: datetime | None
) -> dict[str, Any]:
    """One programme on `as_of` as known at `known_at`; ProgrammeNotFound if none (then)."""
    events = _events(services, programme_id)
    if known_at is not None and events[0].timestamp > known_at:
        raise ProgrammeNotFound(programme_id)
    found = view.programme_view(events, _as_of(as_of), known_at)
    return {k: v for k, v in found.items() if not k.startswith("_")} | {"_view": found}


def public(found: dict[str, Any]) -> dict[str, Any]:
    """A programme view without its internals (what the API answers)."""
    return {k: v for k, v in found.items() if not k.startswith("_")}


def programmes(
    services: Any, as_of: date | None, known_at: datetime | None
) -> list[dict[str, Any]]:
    """Every programme on `as_of` (those created by `known_at`), summarised."""
    with services.db.transaction(write=False) as tx:
        ids = programme_ids(tx)
    found = []
    for pid in ids:
        try:
            one = programme(services, pid, as_of, known_at)
        except ProgrammeNotFound:
            continue
        if one["opened_on"] > one["as_of"]:
            continue
        summary = {k: one[k] for k in SUMMARY_KEYS}
        found.append(summary)
    return found


SUMMARY_KEYS = (
    "id",
    "name",
    "currency",
    "opened_on",
    "envelope",
    "committed",
    "available",
    "commitment_share_pct",
    "engaged",
    "disbursed",
    "laureates",
)


def call(
    services: Any, programme_id: UUID, call_name: str, as_of: date | None, known_at: datetime | None
) -> dict[str, Any] | None:
    """One call's published and itemised figures and its laureates (None: no such call)."""
    found = programme(services, programme_id, as_of, known_at)
    laureates = view.call_laureates(found["_view"], call_name)
    if laureates is None:
        return None
    row = next(c for c in found["calls"] if c["call"] == call_name)
    return {
        "programme_id": found["id"],
        "programme": found["name"],
        "currency": found["currency"],
        "as_of": found["as_of"],
        "known_at": found["known_at"],
        **row,
        "laureates": laureates,
    }


def project_funding(
    services: Any, project_id: UUID, as_of: date | None, known_at: datetime | None
) -> list[dict[str, Any]]:
    """What a project received from every programme, each kind of money on its own."""
    with services.db.transaction(write=False) as tx:
        ids = programme_ids(tx)
    funding = []
    for pid in ids:
        try:
            found = programme(services, pid, as_of, known_at)
        except ProgrammeNotFound:
            continue
        for row in view.project_funding(found["_view"], project_id):
            funding.append({"programme_id": found["id"], "programme": found["name"], **row})
    return funding
