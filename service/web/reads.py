"""What the pages read: the API's query functions, composed in one read transaction."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from projections import queries
from projections.catchup import position
from projections.db import Tx
from projections.editions import editions
from projections.figures import portfolio_summary, project_figures
from projections.hashchain import chain_head
from projections.state import ProjectState
from service.bootstrap import Services
from service.context import current_services
from service.web.cache import remembered
from service.web.state import PageState

T = TypeVar("T")

DRIFT_BIN = 10  # percentage points per bar of the budget-drift distribution
DRIFT_CAP = 100  # one last bar for every drift of 100 % and more


def services() -> Services:
    found: Services = current_services()
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


def kept(read: Read, kind: str, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()` as computed before on this database at the read's position (cache.py)."""
    settings = services().settings
    where = (settings.database_url, settings.database_schema, str(settings.sqlite_path))
    return remembered(kind, (where, key), read.reflects["position"], compute)


def known_editions(tx: Tx, known_at: datetime | None) -> list[dict[str, Any]]:
    """The imported editions, as known at `known_at`."""
    found = editions(tx)
    return [e for e in found if known_at is None or e["imported_at"] <= known_at]


def editions_read(read: Read, known_at: datetime | None) -> list[dict[str, Any]]:
    """`known_editions`, kept for the read's position."""
    return kept(read, "editions", known_at, lambda: known_editions(read.tx, known_at))


def followed(read: Read, as_of: date, known_at: datetime | None) -> list[dict[str, Any]]:
    """`queries.followed_projects` on `as_of`, kept for the read's position."""
    return kept(
        read,
        "followed",
        (as_of, known_at),
        lambda: queries.followed_projects(read.tx, as_of, known_at),
    )


def movements(
    before: list[ProjectState], now: list[ProjectState]
) -> dict[str, list[dict[str, Any]]]:
    """The projects that entered and left the portfolio between two lists of states (as
    `queries.changes` counts them), by name."""
    was = {s.project_id for s in before if s.in_portfolio}
    known = {s.project_id: s for s in before}
    known.update({s.project_id: s for s in now})
    is_in = {s.project_id for s in now if s.in_portfolio}

    def named(ids: set[str]) -> list[dict[str, Any]]:
        found = [known[i] for i in ids]
        found.sort(key=lambda s: (s.name or "").casefold())
        return [
            {"id": s.project_id, "name": s.name, "ministry_code": s.ministry_code} for s in found
        ]

    return {"entered": named(is_in - was), "left": named(was - is_in)}


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
    with reading(state) as read:
        as_of, known_at = state.as_of, state.known_at
        found = editions_read(read, known_at)
        figures = kept(
            read, "home", (as_of, known_at), lambda: _home_figures(read.tx, as_of, known_at, found)
        )
    return {"reflects": read.reflects, "editions": found, **figures}


def _home_figures(
    tx: Tx, as_of: date, known_at: datetime | None, found: list[dict[str, Any]]
) -> dict[str, Any]:
    """The summary, the movements and the drift on `as_of`: one read of the states each day."""
    now = queries.states_at(tx, as_of, known_at, light=True)
    previous = previous_edition(found, as_of)
    before = queries.states_at(tx, previous["date"], known_at, light=True) if previous else None
    items = [project_figures(s, as_of) for s in now if s.in_portfolio]
    return {
        "summary": portfolio_summary(now),
        "previous": previous,
        "moves": None if before is None else movements(before, now),
        "drift": drift_distribution(items),
    }


def timeline(state: PageState) -> dict[str, Any]:
    """The key figures of every edition, as known at `known_at` (kept for the position)."""
    with reading(state) as read:
        known_at = state.known_at
        found = editions_read(read, known_at)
        rows = kept(
            read,
            "timeline",
            known_at,
            lambda: [(e, queries.summary(read.tx, e["date"], known_at)) for e in found],
        )
    return {"reflects": read.reflects, "editions": found, "timeline": rows}


# the figures of a project page that "as known at" compares with what is known now
REVISABLE = (
    "name",
    "ministry_code",
    "phase",
    "interministerial",
    "start_date",
    "cost",
    "baseline_cost",
    "budget_drift_pct",
    "planned_end",
    "baseline_end",
    "schedule_drift_pct",
    "rating",
    "funding_received",
    "in_portfolio",
    "figures_withheld",
    "closed",
)


def project_or_404(tx: Tx, project_id: str, as_of: date, known_at: datetime | None) -> Any:
    """The project's state on `as_of` (as the API's 404s when it is unknown or not yet)."""
    from service.errors import Problem

    state = queries.project_state(tx, project_id, as_of, known_at)
    if state is not None:
        return state
    if queries.known_ids(tx, [project_id]):
        raise Problem(404, f"project {project_id} was not registered yet on {as_of}", field="as_of")
    raise Problem(404, f"project {project_id} not found", field="id")


def project(state: PageState, project_id: str) -> dict[str, Any]:
    """One project on a date: its figures, their path over time, its events, its revisions."""
    from service.web.revisions import revised

    mapper = services().portfolio.mapper
    with reading(state) as read:
        tx, as_of, known_at = read.tx, state.as_of, state.known_at
        figures = project_figures(project_or_404(tx, project_id, as_of, known_at), as_of)
        events = queries.project_events(tx, mapper, project_id, known_at)
        path = {}
        for day in sorted({e["sort_date"] for e in events}):
            found = queries.project_state(tx, project_id, day, known_at)
            if found is not None:
                path[day] = project_figures(found, day)
        live = queries.project_state(tx, project_id, date.max, None)
        revisions = {}
        latest = events
        if known_at is not None:
            latest = queries.project_events(tx, mapper, project_id)

            def figures_known(at: datetime | None) -> dict[str, Any] | None:
                found = queries.project_state(tx, project_id, as_of, at)
                return None if found is None else project_figures(found, as_of)

            revisions = revised(figures_known, known_at, latest, REVISABLE)
    return {
        "reflects": read.reflects,
        "project": figures,
        "events": events,
        "path": path,
        "revisions": revisions,
        "version": latest[-1]["version"] if latest else 0,
        "live_ministry": live.ministry_code if live is not None else None,
    }


def latest_figures(project_id: str) -> dict[str, Any]:
    """The project as known now, on its latest date (what a form changes)."""
    from service.web.state import today

    with services().db.transaction(write=False) as tx:
        found = project_or_404(tx, project_id, date.max, None)
    return project_figures(found, today())


def events_since(project_id: str, version: int) -> tuple[list[dict[str, Any]], int]:
    """The project's events recorded after `version` (as known now), and its last version."""
    mapper = services().portfolio.mapper
    with services().db.transaction(write=False) as tx:
        events = queries.project_events(tx, mapper, project_id)
    return [e for e in events if e["version"] > version], (events[-1]["version"] if events else 0)


def projects(state: PageState, where: queries.ProjectFilter, sort: str) -> dict[str, Any]:
    """The projects followed on `as_of` that `where` keeps, sorted; the ministries to pick."""
    with reading(state) as read:
        known_at = state.known_at
        every = followed(read, state.as_of, known_at)
        found = editions_read(read, known_at)
        where = queries.resolve_filter(read.tx, where)
    return {
        "reflects": read.reflects,
        "items": kept(
            read,
            "selected",
            (state.as_of, known_at, where, sort),
            lambda: queries.select_projects(every, where, sort),
        ),
        "ministries": sorted({f["ministry_code"] for f in every if f["ministry_code"]}),
        "editions": found,
    }


def compare(
    state: PageState,
    after: date | None,
    until: date,
    limit: int | None,
    cursor: queries.ChangesCursor | None = None,
) -> dict[str, Any]:
    """What changed from `after` (default: the edition before `until`'s) to `until`: `limit`
    changes of each kind (None: all, as rows for a download), one kind from `cursor`."""
    with reading(state) as read:
        tx, known_at = read.tx, state.known_at
        found = known_editions(tx, known_at)
        if after is None:
            previous = previous_edition(found, until)
            after = previous["date"] if previous else min([until, *(e["date"] for e in found)])
        if limit is None:
            moves: Any = list(queries.each_change(tx, after, until, known_at))
        else:
            moves = queries.changes(tx, None, after, until, known_at, limit=limit, cursor=cursor)
    read.reflects["as_of"] = until
    return {"reflects": read.reflects, "changes": moves, "after": after, "editions": found}


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
