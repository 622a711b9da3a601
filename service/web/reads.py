"""What the pages read: the API's query functions, composed in one read transaction."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from flask import current_app

from projections import queries
from projections.db import Tx
from projections.editions import editions
from projections.hashchain import chain_head
from projections.runner import position
from service.bootstrap import Services
from service.web.state import PageState

DRIFT_BIN = 10  # percentage points per bar of the budget-drift distribution
DRIFT_CAP = 100  # one last bar for every drift of 100 % and more


def services() -> Services:
    found: Services = current_app.extensions["panorama"]
    return found


@dataclass
class Read:
    """An open read: its transaction and what every page states it reflects."""

    tx: Tx
    reflects: dict[str, Any]


@contextmanager
def reading(state: PageState) -> Iterator[Read]:
    """One read transaction; `reflects` gives as_of, known_at, position and chain head."""
    with services().db.transaction(write=False) as tx:
        at = position(tx)
        reflects = {
            "as_of": state.as_of,
            "known_at": state.known_at or datetime.now(UTC),
            "known_at_given": state.known_at is not None,
            "position": at,
            "chain_head": chain_head(tx, at),
        }
        yield Read(tx, reflects)


def known_editions(tx: Tx, known_at: datetime | None) -> list[dict[str, Any]]:
    """The imported editions, as known at `known_at`."""
    found = editions(tx)
    return [e for e in found if known_at is None or e["imported_at"] <= known_at]


def previous_edition(found: list[dict[str, Any]], as_of: date) -> dict[str, Any] | None:
    """The edition before the one in force on `as_of` (the movements are counted from it)."""
    dates = sorted({e["date"] for e in found if e["date"] <= as_of})
    if len(dates) < 2:
        return None
    return next(e for e in found if e["date"] == dates[-2])


def drift_distribution(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Projects per band of budget drift, and the median drift."""
    drifts = [Decimal(i["budget_drift_pct"]) for i in items if i["budget_drift_pct"] is not None]
    bins: dict[int, int] = {}
    for drift in drifts:
        low = min(int(drift // DRIFT_BIN) * DRIFT_BIN, DRIFT_CAP)
        bins[low] = bins.get(low, 0) + 1
    lows = list(range(min(bins), max(bins) + 1, DRIFT_BIN)) if bins else []
    return {
        "bands": [
            (low, None if low >= DRIFT_CAP else low + DRIFT_BIN, bins.get(low, 0)) for low in lows
        ],
        "median": statistics.median(drifts) if drifts else None,
        "count": len(drifts),
    }


def home(state: PageState) -> dict[str, Any]:
    """The portfolio on a date: figures, movements, distributions, and every edition's."""
    mapper = services().portfolio.mapper
    with reading(state) as read:
        tx, as_of, known_at = read.tx, state.as_of, state.known_at
        summary = queries.summary(tx, as_of, known_at)
        found = known_editions(tx, known_at)
        previous = previous_edition(found, as_of)
        moves = queries.changes(tx, mapper, previous["date"], as_of, known_at) if previous else None
        items = queries.list_projects(tx, as_of, known_at)
        timeline = [(e, queries.summary(tx, e["date"], known_at)) for e in found]
    return {
        "reflects": read.reflects,
        "summary": summary,
        "editions": found,
        "previous": previous,
        "moves": moves,
        "drift": drift_distribution(items),
        "timeline": timeline,
    }


def alert_conditions(subscription_ids: list[Any]) -> dict[str, int]:
    """How many subjects are over each subscription's threshold now (the alerts' states)."""
    from projections.alert_queries import active_conditions

    with services().db.transaction(write=False) as tx:
        return active_conditions(tx, [str(i) for i in subscription_ids])


def alert_preview(rule: Any) -> dict[str, Any]:
    """What a rule would cross today: the projects over it (or the portfolio's value)."""
    from domain.subscription import PORTFOLIO_METRICS
    from projections.alert_values import crossing, portfolio_crossing

    on = services().portfolio.today()
    with services().db.transaction(write=False) as tx:
        states = queries.states_at(tx, on, None)
    if rule.metric in PORTFOLIO_METRICS:
        value, crosses = portfolio_crossing(rule, states)
        return {"on": on, "value": value, "crosses": crosses, "projects": []}
    found = sorted(crossing(rule, states), key=lambda sv: (sv[0].name or "").casefold())
    return {"on": on, "value": None, "crosses": bool(found), "projects": found}


def audit(state: PageState) -> dict[str, Any]:
    """The chain's position and head, and the last recorded verification."""
    from projections.hashchain import chain_position
    from projections.verify_log import latest

    with reading(state) as read:
        at = chain_position(read.tx)
        return {
            "reflects": read.reflects,
            "chain_position": at,
            "chain_head": chain_head(read.tx, at),
            "last": latest(read.tx),
        }
