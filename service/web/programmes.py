"""`/programmes` and `/programmes/<id>`: funding programmes, their envelope over time,
committed against available on the chosen date, and each call's laureates.

The pages read `service.programme_reads`, the same functions as `GET /api/funding-programmes`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from flask_babel import gettext

from domain.errors import ProgrammeNotFound
from projections import programme_view
from service import programme_reads
from service.errors import Problem
from service.web.blueprint import web
from service.web.home import money_unit
from service.web.i18n import MILLION, day, money
from service.web.pages import download, render_page
from service.web.reads import reading, services
from service.web.state import page_state


def _amount(figure: dict[str, Any] | None) -> Decimal | None:
    return None if figure is None else Decimal(figure["amount"])


@web.route("/programmes")
def programmes() -> Any:
    """Every funding programme on `as_of` (default today), as known at `known_at`."""
    state = page_state()
    with reading(state) as read:
        reflects = read.reflects
    items = programme_reads.programmes(services(), state.as_of, state.known_at)
    if state.format:
        header = ["name", "currency", "envelope", "committed", "available", "share_pct"]
        rows = [
            [
                p["name"],
                p["currency"],
                _amount(p["envelope"]),
                _amount(p["committed"]),
                _amount(p["available"]),
                p["commitment_share_pct"],
            ]
            for p in items
        ]
        return download(state, "programmes", header, rows, reflects)
    return render_page(
        "web/programmes.html", state=state, items=items, reflects=reflects, amount=_amount
    )


@web.route("/programmes/<programme_id>")
def programme(programme_id: str) -> Any:
    """One programme on `as_of`: envelope, committed, available, calls and laureates."""
    try:
        pid = UUID(programme_id)
    except ValueError:
        raise Problem(404, f"no programme {programme_id!r}: ids are UUIDs", field="id") from None
    state = page_state()
    with reading(state) as read:
        reflects = read.reflects
    try:
        found = programme_reads.programme(services(), pid, state.as_of, state.known_at)
    except ProgrammeNotFound:
        raise Problem(404, f"no programme {programme_id}", field="id") from None
    calls = [
        {**c, "laureates": programme_view.call_laureates(found["_view"], c["call"]) or []}
        for c in found["calls"]
    ]
    if state.format:
        header, rows = laureates_table(calls)
        return download(state, f"programme-{pid}", header, rows, reflects)
    return render_page(
        "web/programme.html",
        state=state,
        programme=found,
        calls=calls,
        envelope=envelope_chart(found),
        reflects=reflects,
        amount=_amount,
    )


def laureates_table(calls: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Every laureate of every call, each kind of money in its own column."""
    header = [
        "call",
        "laureate",
        "project_id",
        "ministry_code",
        "announced",
        "engaged",
        "disbursed",
        "currency",
        "effective_date",
        "date_published",
        "confidence",
        "source",
    ]
    rows = [
        [
            c["call"],
            lau["name"],
            lau["project_id"],
            lau["ministry_code"],
            _amount(lau["announced"]),
            _amount(lau["engaged"]),
            _amount(lau["disbursed"]),
            c["itemised"]["total"]["currency"],
            lau["effective_date"],
            lau["dated"],
            lau["confidence"],
            lau["source"],
        ]
        for c in calls
        for lau in c["laureates"]
    ]
    return header, rows


def envelope_rows(found: dict[str, Any]) -> list[dict[str, Any]]:
    """On each date the envelope or the commitment changed: both, and what is left."""
    view = found["_view"]
    days = sorted(
        {h["effective_date"] for h in found["envelope_history"]}
        | {lau.effective_date for lau in view["_laureates"].values() if lau.amounts}
    )
    rows = []
    for when in days:
        envelope = None
        for h in found["envelope_history"]:
            if h["effective_date"] <= when:
                envelope = Decimal(h["envelope"]["amount"])
        committed = sum(
            (
                lau.amounts.get("announced", Decimal(0))
                for lau in view["_laureates"].values()
                if lau.effective_date is not None and lau.effective_date <= when
            ),
            Decimal(0),
        )
        rows.append(
            {
                "day": when,
                "envelope": envelope,
                "committed": committed,
                "available": None if envelope is None else envelope - committed,
            }
        )
    return rows


def envelope_chart(found: dict[str, Any]) -> dict[str, Any]:
    """A `steps` chart: the envelope in force and the commitment over time."""
    table = envelope_rows(found)

    def millions(value: Decimal | None) -> str | None:
        return None if value is None else str((value / MILLION).quantize(Decimal("0.01")))

    spec = {
        "kind": "steps",
        "unit": "money",
        "axis_name": money_unit(),
        "series": [
            {
                "name": gettext("Envelope"),
                "points": [[r["day"].isoformat(), millions(r["envelope"])] for r in table],
            },
            {
                "name": gettext("Committed (announced)"),
                "points": [[r["day"].isoformat(), millions(r["committed"])] for r in table],
            },
        ],
        "marks": [
            {"at": h["effective_date"].isoformat(), "label": gettext("Envelope revised")}
            for h in found["envelope_history"][1:]
        ],
        "description": gettext(
            "On %(day)s the envelope in force is %(envelope)s; %(committed)s is committed "
            "and %(available)s is available.",
            day=day(found["as_of"]),
            envelope=money(_amount(found["envelope"])),
            committed=money(_amount(found["committed"])),
            available=money(_amount(found["available"])),
        ),
    }
    return {"spec": spec, "rows": table}
