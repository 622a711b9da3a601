"""Read-model queries: indexed look-ups of project states as of a date, as known at a time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from psycopg import sql

from domain.values import RATING_RANK, canonical_ministry
from projections.db import Row, Tx, as_date, as_ts
from projections.figure_tables import materialised_summary
from projections.figures import portfolio_summary, project_figures
from projections.project_states import state_from_row
from projections.schema import LIVE, STATE_COLUMNS, Tables
from projections.state import ProjectState

STANDARD_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_topic",
        "effective_date",
        "actor",
        "source",
        "narrative",
        "correction",
    }
)


def _bitemporal(alias: str, known_at: datetime | None) -> tuple[sql.Composable, list[Any]]:
    """The knowledge-time filter: the live rows, or the rows known at `known_at`."""
    a = sql.Identifier(alias)
    if known_at is None:
        return sql.SQL("{a}.recorded_to IS NULL").format(a=a), []
    return (
        sql.SQL(
            "{a}.recorded_from <= %s AND ({a}.recorded_to IS NULL OR {a}.recorded_to > %s)"
        ).format(a=a),
        [known_at, known_at],
    )


def project_state(
    tx: Tx, project_id: str, as_of: date, known_at: datetime | None, tables: Tables = LIVE
) -> ProjectState | None:
    """One project's state on `as_of` as known at `known_at` (None: not registered yet)."""
    cond, params = _bitemporal("s", known_at)
    row = tx.fetchone(
        sql.SQL(
            "SELECT s.*, {ref} FROM {tbl} s {join} WHERE s.project_id = %s "
            "AND s.valid_from <= %s AND {cond} ORDER BY s.valid_from DESC LIMIT 1"
        ).format(tbl=tables.states, cond=cond, ref=_REF_COLUMNS, join=_ref_join(tables)),
        [project_id, as_of, *params],
    )
    return state_from_row(row) if row else None


# The ministries reference, joined on the code as recorded (docs/importing.md, "Ministries").
_REF_COLUMNS = sql.SQL("m.stable_code AS ministry_stable, m.name AS ministry_reference_name")


def _ref_join(tables: Tables) -> sql.Composable:
    return sql.SQL("LEFT JOIN {m} m ON m.code = s.ministry_code").format(m=tables.ministry_codes)


FIGURE_COLUMNS = sql.SQL(", ").join(
    sql.Identifier("s", c) for c in STATE_COLUMNS if c not in {"extra", "recorded_to"}
)


def states_at(
    tx: Tx, as_of: date, known_at: datetime | None, tables: Tables = LIVE, *, light: bool = False
) -> list[ProjectState]:
    """Every registered project's state on `as_of`, as known at `known_at`.

    `light` leaves out the description, programmes and links (the figures need none).
    """
    cols = sql.SQL(", ").join([FIGURE_COLUMNS if light else sql.SQL("s.*"), _REF_COLUMNS])
    if tx.dialect == "postgres":
        cond, params = _bitemporal("s", known_at)
        query = sql.SQL(
            "SELECT {cols} FROM {p} p CROSS JOIN LATERAL (SELECT * FROM {s} s "
            "WHERE s.project_id = p.project_id AND s.valid_from <= %s AND {cond} "
            "ORDER BY s.valid_from DESC LIMIT 1) s {join} WHERE p.registered_on <= %s"
        ).format(cols=cols, p=tables.projects, s=tables.states, cond=cond, join=_ref_join(tables))
    else:
        cond, params = _bitemporal("s2", known_at)
        query = sql.SQL(
            "SELECT {cols} FROM {p} p JOIN {s} s ON s.rowid = (SELECT s2.rowid FROM {s} s2 "
            "WHERE s2.project_id = p.project_id AND s2.valid_from <= %s AND {cond} "
            "ORDER BY s2.valid_from DESC LIMIT 1) {join} WHERE p.registered_on <= %s"
        ).format(cols=cols, p=tables.projects, s=tables.states, cond=cond, join=_ref_join(tables))
    rows = tx.fetch(query, [as_of, *params, as_of])
    return [state_from_row(r) for r in rows]


SORT_KEYS = {
    "name": lambda f: (f["name"] or "").casefold(),
    "ministry": lambda f: (f["ministry_code"] or "", (f["name"] or "").casefold()),
    "phase": lambda f: (f["phase"] or "", (f["name"] or "").casefold()),
    "rating": lambda f: (RATING_RANK.get(f["rating"], -1), (f["name"] or "").casefold()),
    "cost": lambda f: (f["cost"] is None, f["cost"] or 0),
    "budget_drift": lambda f: (f["budget_drift_pct"] is None, f["budget_drift_pct"] or 0),
    "schedule_drift": lambda f: (f["schedule_drift_pct"] is None, f["schedule_drift_pct"] or 0),
    "start_date": lambda f: (f["start_date"] is None, f["start_date"] or date.min),
}
# The figure of a sort key that may be missing: missing ones come last in either order.
SORT_FIELDS = {
    "rating": "rating",
    "cost": "cost",
    "budget_drift": "budget_drift_pct",
    "schedule_drift": "schedule_drift_pct",
    "start_date": "start_date",
}


@dataclass(frozen=True)
class ProjectFilter:
    """Which projects a list keeps; a drift range keeps only projects that have that drift."""

    ministry: str | None = None
    phase: str | None = None
    rating: str | None = None
    q: str | None = None
    budget_drift_min: Decimal | None = None
    budget_drift_max: Decimal | None = None
    schedule_drift_min: Decimal | None = None
    schedule_drift_max: Decimal | None = None

    def keeps(self, f: dict[str, Any]) -> bool:
        """Whether the figures `f` of one project pass every filter given."""
        if self.ministry and canonical_ministry(f["ministry_code"]) != canonical_ministry(
            self.ministry
        ):
            return False
        if self.phase and f["phase"] != self.phase:
            return False
        if self.rating and f["rating"] != self.rating:
            return False
        if self.q and self.q.casefold() not in f"{f['name']} {f['description'] or ''}".casefold():
            return False
        return _within(f["budget_drift_pct"], self.budget_drift_min, self.budget_drift_max) and (
            _within(f["schedule_drift_pct"], self.schedule_drift_min, self.schedule_drift_max)
        )


def _within(value: Decimal | None, low: Decimal | None, high: Decimal | None) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def followed_projects(
    tx: Tx, as_of: date, known_at: datetime | None, *, include_departed: bool = False
) -> list[dict[str, Any]]:
    """The figures of every project followed on `as_of` (or registered, with departed ones)."""
    return [
        project_figures(state, as_of)
        for state in states_at(tx, as_of, known_at)
        if include_departed or state.in_portfolio
    ]


def select_projects(
    items: list[dict[str, Any]], where: ProjectFilter, sort: str = "name"
) -> list[dict[str, Any]]:
    """The projects of `items` that `where` keeps, sorted by `sort` (`-key`: descending)."""
    found = [f for f in items if where.keeps(f)]
    key = sort.lstrip("-")
    found.sort(key=SORT_KEYS[key], reverse=sort.startswith("-"))
    if key in SORT_FIELDS:
        found.sort(key=lambda f: f[SORT_FIELDS[key]] is None)  # stable: missing ones last
    return found


def stable_ministry(tx: Tx, code: str, tables: Tables = LIVE) -> str:
    """The stable code of the ministry `code` names (the code itself if the reference lacks it)."""
    wanted = canonical_ministry(code)
    found = tx.scalar(
        sql.SQL("SELECT stable_code FROM {m} WHERE code = %s").format(m=tables.ministry_codes),
        (wanted,),
    )
    return str(found) if found else wanted


def resolve_filter(tx: Tx, where: ProjectFilter) -> ProjectFilter:
    """The filter with its ministry resolved to a stable code (MINDEF keeps the Armées')."""
    if not where.ministry:
        return where
    return replace(where, ministry=stable_ministry(tx, where.ministry))


def list_projects(
    tx: Tx,
    as_of: date,
    known_at: datetime | None,
    *,
    ministry: str | None = None,
    phase: str | None = None,
    q: str | None = None,
    include_departed: bool = False,
    sort: str = "name",
    where: ProjectFilter | None = None,
) -> list[dict[str, Any]]:
    """Projects followed on `as_of`, filtered (`where`, or the three short filters) and sorted."""
    where = resolve_filter(tx, where or ProjectFilter(ministry=ministry, phase=phase, q=q))
    items = followed_projects(tx, as_of, known_at, include_departed=include_departed)
    return select_projects(items, where, sort)


def summary(tx: Tx, as_of: date, known_at: datetime | None) -> dict[str, Any]:
    """The panorama's portfolio figures on `as_of`, as known at `known_at`: from the
    materialised tables for what is known now, else from each project's state then."""
    if known_at is None:
        return materialised_summary(tx, as_of)
    return portfolio_summary(states_at(tx, as_of, known_at, light=True))


def describe_event(mapper: Mapper[UUID], row: Row) -> dict[str, Any]:
    """An event row of the read model for display (its payload when the row has its state)."""
    described = _event_columns(row)
    if "state" in row:
        event = mapper.to_domain_event(
            StoredEvent(
                UUID(row["project_id"]), int(row["version"]), row["topic"], bytes(row["state"])
            )
        )
        described["payload"] = {k: v for k, v in vars(event).items() if k not in STANDARD_FIELDS}
    return described


def _event_columns(row: Row) -> dict[str, Any]:
    return {
        "project_id": row["project_id"],
        "version": int(row["version"]),
        "position": int(row["position"]),
        "type": row["type"],
        "effective_date": as_date(row["effective_date"]),
        "recorded_at": as_ts(row["recorded_at"]),
        "actor": row["actor"],
        "source": row["source"],
        "narrative": row["narrative"],
        "correction": bool(row["correction"]),
    }


def events_between(
    tx: Tx, mapper: Mapper[UUID], after: date, until: date, known_at: datetime | None
) -> list[dict[str, Any]]:
    """Project events that apply in (after, until], recorded by `known_at` (no payload:
    listing a long window must not decode every event; `/events` has the payloads)."""
    query = sql.SQL(
        "SELECT project_id, version, position, type, effective_date, recorded_at, actor, "
        "source, narrative, correction FROM {e} WHERE sort_date > %s AND sort_date <= %s"
    ).format(e=LIVE.events)
    params: list[Any] = [after, until]
    if known_at is not None:
        query += sql.SQL(" AND recorded_at <= %s")
        params.append(known_at)
    query += sql.SQL(" ORDER BY sort_date, project_id, version")
    return [describe_event(mapper, r) for r in tx.fetch(query, params)]


def changes(
    tx: Tx, mapper: Mapper[UUID], after: date, until: date, known_at: datetime | None
) -> dict[str, Any]:
    """What changed in the portfolio between two dates, with the events responsible."""
    before = {s.project_id: s for s in states_at(tx, after, known_at, light=True)}
    now = {s.project_id: s for s in states_at(tx, until, known_at, light=True)}
    by_project: dict[str, list[dict[str, Any]]] = {}
    for event in events_between(tx, mapper, after, until, known_at):
        by_project.setdefault(event["project_id"], []).append(event)
    result: dict[str, list[dict[str, Any]]] = {
        "entered": [],
        "left": [],
        "phase_changes": [],
        "cost_changes": [],
        "schedule_changes": [],
    }
    for pid in sorted(set(before) | set(now), key=lambda p: _name(now.get(p) or before[p])):
        old, new = before.get(pid), now.get(pid)
        was_in = old is not None and old.in_portfolio
        is_in = new is not None and new.in_portfolio
        ref = new or old
        assert ref is not None
        base = {"id": pid, "name": ref.name, "ministry_code": ref.ministry}
        events = by_project.get(pid, [])
        if is_in and not was_in:
            result["entered"].append({**base, "events": events})
        elif was_in and not is_in:
            result["left"].append({**base, "events": events})
        if old is None or new is None:
            continue
        for key, attr, kinds in (
            ("phase_changes", "phase", {"PhaseTransitioned", "Registered"}),
            ("cost_changes", "current_cost", {"CostReestimated", "Registered"}),
            ("schedule_changes", "planned_end", {"ScheduleReestimated", "Registered"}),
        ):
            before_value, after_value = getattr(old, attr), getattr(new, attr)
            if attr != "phase" and (old.figures_withheld or new.figures_withheld):
                continue  # a withheld cost or schedule is not shown, not even as a change
            if before_value != after_value:
                result[key].append(
                    {
                        **base,
                        "from": before_value,
                        "to": after_value,
                        "events": [e for e in events if e["type"] in kinds],
                    }
                )
    return result


def _name(state: ProjectState) -> str:
    return (state.name or "").casefold()


def history(tx: Tx, mapper: Mapper[UUID], project_id: str) -> list[dict[str, Any]]:
    """The project's state after each recorded change, with the event that caused it.

    Each step is the state on the change's effective date as known right after it
    was recorded (a backdated correction shows the state it corrected), with the fields
    that differ from the previous step's state.
    """
    rows = tx.fetch(
        sql.SQL("SELECT * FROM {e} WHERE project_id = %s ORDER BY version").format(e=LIVE.events),
        (project_id,),
    )
    steps = []
    previous: dict[str, Any] = {}
    for row in rows:
        event = describe_event(mapper, row)
        day = as_date(row["sort_date"])
        assert day is not None and event["recorded_at"] is not None
        state = project_state(tx, project_id, day, event["recorded_at"])
        figures = project_figures(state, day) if state is not None else None
        changed = field_changes(previous, figures or {})
        steps.append({"event": event, "state": figures, "changes": changed})
        previous = figures or {}
    return steps


UNCOMPARED = frozenset({"version", "valid_from"})


def field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The fields whose value differs between two shown states: field, old value, new value."""
    return [
        {"field": key, "old": old.get(key), "new": new.get(key)}
        for key in [*new, *(k for k in old if k not in new)]
        if key not in UNCOMPARED and old.get(key) != new.get(key)
    ]


def known_ids(tx: Tx, ids: Sequence[str]) -> set[str]:
    """Which of `ids` are registered projects in the read model."""
    if not ids:
        return set()
    marks = sql.SQL(", ").join(sql.Placeholder() for _ in ids)
    rows = tx.fetch(
        sql.SQL("SELECT project_id FROM {p} WHERE project_id IN ({m})").format(
            p=LIVE.projects, m=marks
        ),
        list(ids),
    )
    return {r["project_id"] for r in rows}


def project_events(
    tx: Tx, mapper: Mapper[UUID], project_id: str, known_at: datetime | None = None
) -> list[dict[str, Any]]:
    """One project's events with their payloads, recorded by `known_at`, in version order."""
    query = sql.SQL("SELECT * FROM {e} WHERE project_id = %s").format(e=LIVE.events)
    params: list[Any] = [project_id]
    if known_at is not None:
        query += sql.SQL(" AND recorded_at <= %s")
        params.append(known_at)
    query += sql.SQL(" ORDER BY version")
    events = []
    for row in tx.fetch(query, params):
        event = describe_event(mapper, row)
        event["sort_date"] = as_date(row["sort_date"])
        events.append(event)
    return events
