"""The portfolio figures materialised: spans, daily deltas and monthly checkpoints.

The live rows of a project's states form spans [valid_from, next valid_from). `pr_spans`
keeps each span with the ministry code as recorded, the phase and the project's contribution
to the figures' sums (`projections.figures.SUMS`). `pr_figure_deltas` keeps, per (day,
ministry code as recorded, phase), what the sums change by that day: +contribution where a
span starts, -contribution where it ends. `pr_figure_checkpoints` keeps, per (first day of a
month, code, phase), the sums of every delta before that month. The sums on a date D are then
the greatest checkpoint on or before D plus the deltas of [that month, D]: a few hundred rows
whatever the size of the portfolio, resolved to stable ministry codes at read time through
`pr_ministry_codes` exactly as `states_at` does (an old edition counts under its stable code,
named by the reference).

The projector keeps the three tables in the same transaction as the states rows (`refresh`);
a PostgreSQL rebuild derives them in SQL after its bulk load (`derive_figure_tables`). The
medians do not decompose: they are computed over the spans alive on D (PostgreSQL: an SP-GiST
index over the spans' date ranges and ordered-set aggregates with grouping sets, one query;
SQLite: in Python). Only the live knowledge is materialised: a `known_at` query folds each
project's state as before.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal, localcontext
from typing import Any

from psycopg import sql

from projections.db import Row, Tx, as_date, ident
from projections.figures import (
    _EXACT,
    CADRAGE,
    DRIFT_PLACES,
    DRIFT_QUANTUM,
    MONEY_SUMS,
    SUMS,
    Medians,
    contribution,
    figures_of,
)
from projections.schema import LIVE, NAME_KEYS, Tables
from projections.state import ProjectState

SPAN_KEYS: tuple[str, ...] = (
    "project_id",
    "valid_from",
    "valid_to",
    "ministry_code",
    "ministry_name",
    "phase",
)
# What the changes between two dates compare, besides the phase and whether the project is
# followed (`projects`): the span's state as it is, withheld figures included.
SPAN_COMPARED: tuple[str, ...] = ("name", "figures_withheld", "current_cost", "planned_end")
SPAN_COLUMNS: tuple[str, ...] = (*SPAN_KEYS, *SUMS, *SPAN_COMPARED)
_VALUES = slice(len(SPAN_KEYS), len(SPAN_KEYS) + len(SUMS))
NOTHING: tuple[Any, ...] = tuple(Decimal(0) if n in MONEY_SUMS else 0 for n in SUMS)
_MONEY = tuple(n in MONEY_SUMS for n in SUMS)
_SUMS = sql.SQL(", ").join(ident(n) for n in SUMS)
GROUP_COLUMNS = ("ministry_code", "ministry_name", "phase")
GROUP = sql.SQL(", ").join(ident(n) for n in GROUP_COLUMNS)
CHUNK = 500
# (ministry code as recorded, ministry name as recorded or "", phase): the name is part of the
# group so that a code the reference lacks is named as the per-project path names it.
Group = tuple[str, str, str]
Vector = list[Any]


def span_values(state: ProjectState) -> tuple[Any, ...]:
    """What a span of `state` adds to the sums (nothing while the project is not followed)."""
    return contribution(state) or NOTHING


def _vector(row: Row) -> Vector:
    return [Decimal(str(row[n])) if m else int(row[n]) for n, m in zip(SUMS, _MONEY, strict=True)]


def _add(into: dict[Any, Vector], key: Any, values: Sequence[Any], sign: int) -> None:
    found = into.get(key)
    with localcontext(_EXACT):
        if found is None:
            into[key] = [sign * v for v in values]
        else:
            into[key] = [a + sign * v for a, v in zip(found, values, strict=True)]


def month_after(day: date) -> date:
    """The first day of the month after `day`'s."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def months(first: date, last: date) -> list[date]:
    """The first days of the months from `first` to `last` included."""
    found, month = [], first
    while month <= last:
        found.append(month)
        month = month_after(month)
    return found


# -- the incremental path ------------------------------------------------------------------
def refresh(tx: Tx, tables: Tables, changed: dict[str, list[ProjectState]]) -> None:
    """After the projector wrote new live rows: rewrite each changed project's spans from its
    first new row on, and move the deltas and checkpoints by the difference.

    `changed` holds, per project, its new live states in valid_from order: every live row
    from the first one's valid_from on (the projector retires and rewrites them all)."""
    if not changed:
        return
    since: dict[str, date] = {}
    for pid, states in changed.items():
        assert states[0].valid_from is not None
        since[pid] = states[0].valid_from
    deltas: dict[tuple[date, str, str, str], Vector] = {}
    spans: list[list[Any]] = []
    for row in _take_affected_spans(tx, tables, since):
        pid, values = row["project_id"], _vector(row)
        start, end = as_date(row["valid_from"]), as_date(row["valid_to"])
        assert start is not None
        group = (row["ministry_code"], row["ministry_name"] or "", row["phase"])
        if values[0]:
            _add(deltas, (start, *group), values, -1)
            if end is not None:
                _add(deltas, (end, *group), values, 1)
        if start < since[pid]:  # the span that holds the first change now ends there
            keys = [pid, start, since[pid], group[0], row["ministry_name"], group[2]]
            spans.append([*keys, *values, *(row[c] for c in SPAN_COMPARED)])
    for pid, states in changed.items():
        for i, state in enumerate(states):
            end = states[i + 1].valid_from if i + 1 < len(states) else None
            keys = [pid, state.valid_from, end, state.ministry_code, state.ministry_name]
            compared = [state.name, state.figures_withheld, state.current_cost, state.planned_end]
            spans.append([*keys, state.phase, *span_values(state), *compared])
    for span in spans:
        values = span[_VALUES]
        if values[0]:
            group = (span[3], span[4] or "", span[5])
            _add(deltas, (span[1], *group), values, 1)
            if span[2] is not None:
                _add(deltas, (span[2], *group), values, -1)
    tx.copy_rows(tables.spans, SPAN_COLUMNS, spans)
    keep_name_keys(tx, tables, {state.name for states in changed.values() for state in states})
    apply_deltas(tx, tables, {k: v for k, v in deltas.items() if any(v)})


def keep_name_keys(tx: Tx, tables: Tables, names: Iterable[str | None]) -> None:
    """PostgreSQL: add the casefolded keys of `names` that `tables.name_keys` lacks (one
    statement; a name's key never changes, so an existing one is kept)."""
    if tx.dialect != "postgres":
        return
    wanted = sorted({name for name in names if name is not None})
    if not wanted:
        return
    tx.execute(_statements(tables).name_keys, [wanted, [name.casefold() for name in wanted]])


def fill_name_keys(tx: Tx, tables: Tables) -> None:
    """PostgreSQL: the keys of every name of `tables`' spans that the key table lacks (after
    the spans were derived in SQL, or once for a store made before the keys)."""
    rows = tx.fetch_tuples(
        sql.SQL(
            "SELECT DISTINCT s.name FROM {spans} s WHERE s.name IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM {keys} k WHERE k.name = s.name)"
        ).format(spans=tables.spans, keys=tables.name_keys)
    )
    keep_name_keys(tx, tables, [r[0] for r in rows])


def drop_stale_name_keys(tx: Tx) -> None:
    """PostgreSQL: drop the name keys' tables of another Unicode version (or of the first,
    unversioned name, `pr_name_keys`): Python's `casefold` may differ under another version,
    so the keys are made anew (`name_keys_missing` then `fill_name_keys`)."""
    if tx.dialect != "postgres":
        return
    stale = tx.fetch_tuples(
        sql.SQL(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND left(table_name, 12) = 'pr_name_keys' "
            "AND table_name <> %s"
        ),
        [NAME_KEYS],
    )
    for (name,) in stale:
        tx.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(name)))


def name_keys_missing(tx: Tx, tables: Tables) -> bool:
    """PostgreSQL: whether spans exist but no name key (a store made before the keys)."""
    if tx.dialect != "postgres":
        return False
    return bool(
        tx.scalar(
            sql.SQL(
                "SELECT NOT EXISTS (SELECT 1 FROM {keys}) AND EXISTS (SELECT 1 FROM {spans})"
            ).format(keys=tables.name_keys, spans=tables.spans)
        )
    )


def _take_affected_spans(tx: Tx, tables: Tables, since: dict[str, date]) -> list[Row]:
    """Delete and return the spans of each project that end after its first change (or are
    open): one statement per chunk on PostgreSQL (DELETE ... RETURNING)."""
    found: list[Row] = []
    items = sorted(since.items())
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        params = [p for item in chunk for p in item]
        if tx.dialect == "postgres":
            found += tx.fetch(_take_spans_statement(tables, len(chunk)), params)
            continue
        values = sql.SQL(", ").join(sql.SQL("(%s, %s)") for _ in chunk)
        found += tx.fetch(
            sql.SQL(
                "WITH v(pid, since) AS (VALUES {values}) SELECT s.* FROM {tbl} s "
                "JOIN v ON s.project_id = v.pid WHERE s.valid_to IS NULL OR s.valid_to > v.since"
            ).format(values=values, tbl=tables.spans),
            params,
        )
        tx.executemany(
            sql.SQL(
                "DELETE FROM {tbl} WHERE project_id = %s AND (valid_to IS NULL OR valid_to > %s)"
            ).format(tbl=tables.spans),
            chunk,
        )
    return found


@functools.lru_cache(maxsize=256)
def _take_spans_statement(tables: Tables, count: int) -> str:
    """`_take_affected_spans`' PostgreSQL statement for `count` projects, rendered once."""
    values = sql.SQL(", ").join(sql.SQL("(%s::text, %s::date)") for _ in range(count))
    return (
        sql.SQL(
            "DELETE FROM {tbl} s USING (VALUES {values}) v(pid, since) "
            "WHERE s.project_id = v.pid AND (s.valid_to IS NULL OR s.valid_to > v.since) "
            "RETURNING s.*"
        )
        .format(values=values, tbl=tables.spans)
        .as_string()
    )


class _Statements:
    """`refresh`'s statements of a fixed shape for one set of tables, rendered to text once
    (psycopg renders a composed statement on every execute)."""

    def __init__(self, tables: Tables) -> None:
        cp = tables.figure_checkpoints
        self.name_keys = (
            sql.SQL(
                "INSERT INTO {keys} (name, name_key) SELECT * FROM unnest(%s::text[], "
                "%s::text[]) ON CONFLICT (name) DO NOTHING"
            )
            .format(keys=tables.name_keys)
            .as_string()
        )
        self.grid = (
            sql.SQL(
                "SELECT b.lo, b.hi, c.ministry_code, c.ministry_name, c.phase FROM "
                "(SELECT min(month) AS lo, max(month) AS hi FROM {cp}) b "
                "LEFT JOIN {cp} c ON c.month = b.hi"
            )
            .format(cp=cp)
            .as_string()
        )
        self.copy_month = (
            sql.SQL(
                "INSERT INTO {cp} (month, {group}, {cols}) "
                "SELECT %s, {group}, {cols} FROM {cp} WHERE month = %s"
            )
            .format(cp=cp, group=GROUP, cols=_SUMS)
            .as_string()
        )


@functools.lru_cache(maxsize=64)
def _statements(tables: Tables) -> _Statements:
    return _Statements(tables)


def _plus(
    tx: Tx, target: sql.Composable | None, name: str, other: sql.Composable
) -> sql.Composable:
    """[target.]name + other, exact in both dialects (SQLite keeps money as text)."""
    column = ident(name) if target is None else sql.SQL("{}.{}").format(target, ident(name))
    if tx.dialect == "sqlite" and name in MONEY_SUMS:
        return sql.SQL("dec_add({}, {})").format(column, other)
    return sql.SQL("{} + {}").format(column, other)


def apply_deltas(tx: Tx, tables: Tables, deltas: dict[tuple[date, str, str, str], Vector]) -> None:
    """Add `deltas` to the deltas table and to every checkpoint after each one's day."""
    if not deltas:
        return
    rows = [[*key, *values] for key, values in sorted(deltas.items())]
    days = [r[0] for r in rows]
    _ensure_checkpoints(tx, tables, min(days), max(days), {(r[1], r[2], r[3]) for r in rows})
    if tx.dialect == "postgres":
        for start in range(0, len(rows), 2000):
            _apply_deltas_in_postgres(tx, tables, rows[start : start + 2000])
        return
    tbl = tables.figure_deltas
    sets = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(
            ident(n), _plus(tx, tbl, n, sql.SQL("excluded.{}").format(ident(n)))
        )
        for n in SUMS
    )
    marks = sql.SQL(", ").join(sql.Placeholder() for _ in range(4 + len(SUMS)))
    tx.executemany(
        sql.SQL(
            "INSERT INTO {tbl} (day, {group}, {cols}) VALUES ({marks}) "
            "ON CONFLICT (day, {group}) DO UPDATE SET {sets}"
        ).format(tbl=tbl, group=GROUP, cols=_SUMS, marks=marks, sets=sets),
        rows,
    )
    moves = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(ident(n), _plus(tx, None, n, sql.Placeholder())) for n in SUMS
    )
    tx.executemany(
        sql.SQL(
            "UPDATE {tbl} SET {moves} WHERE ministry_code = %s AND ministry_name = %s "
            "AND phase = %s AND month > %s"
        ).format(tbl=tables.figure_checkpoints, moves=moves),
        [[*values, code, name, phase, day] for day, code, name, phase, *values in rows],
    )


_TYPED = sql.SQL(", ").join(
    [sql.SQL("%s::date"), *(sql.SQL("%s::text") for _ in GROUP_COLUMNS)]
    + [sql.SQL("%s::numeric" if n in MONEY_SUMS else "%s::bigint") for n in SUMS]
)


def _apply_deltas_in_postgres(tx: Tx, tables: Tables, rows: list[list[Any]]) -> None:
    """The deltas upserted and the checkpoints after them moved, in one statement."""
    tx.execute(_deltas_statement(tables, len(rows)), [p for row in rows for p in row])


@functools.lru_cache(maxsize=256)
def _deltas_statement(tables: Tables, count: int) -> str:
    """`_apply_deltas_in_postgres`' statement for `count` rows, rendered to text once per
    shape: psycopg renders a composed statement on every execute, and rendering this one
    (some hundred identifiers) was a tenth of the Celery worker's CPU in a catch-up."""
    cp = tables.figure_checkpoints
    values = sql.SQL(", ").join(sql.SQL("({})").format(_TYPED) for _ in range(count))
    added = sql.SQL(", ").join(sql.SQL("{0} = t.{0} + excluded.{0}").format(ident(n)) for n in SUMS)
    moved = sql.SQL(", ").join(sql.SQL("{0} = c.{0} + x.{0}").format(ident(n)) for n in SUMS)
    totals = sql.SQL(", ").join(sql.SQL("sum(v.{0}) AS {0}").format(ident(n)) for n in SUMS)
    query = sql.SQL(
        "WITH v (day, {group}, {cols}) AS (VALUES {values}), "
        "ins AS (INSERT INTO {deltas} AS t (day, {group}, {cols}) SELECT * FROM v "
        "ON CONFLICT (day, {group}) DO UPDATE SET {added}) "
        "UPDATE {cp} c SET {moved} FROM (SELECT k.month, v.ministry_code, v.ministry_name, "
        "v.phase, {totals} FROM v JOIN {cp} k ON k.ministry_code = v.ministry_code "
        "AND k.ministry_name = v.ministry_name AND k.phase = v.phase AND k.month > v.day "
        "GROUP BY k.month, v.ministry_code, v.ministry_name, v.phase) x "
        "WHERE c.month = x.month AND c.ministry_code = x.ministry_code "
        "AND c.ministry_name = x.ministry_name AND c.phase = x.phase"
    ).format(
        group=GROUP,
        cols=_SUMS,
        values=values,
        deltas=tables.figure_deltas,
        added=added,
        cp=cp,
        moved=moved,
        totals=totals,
    )
    return query.as_string()


def _ensure_checkpoints(
    tx: Tx, tables: Tables, first_day: date, last_day: date, groups: set[Group]
) -> None:
    """Checkpoint rows for every group, over every month from the one after the first delta
    to the one after the last (a dense grid, so that each month has all its groups)."""
    found = tx.fetch(_statements(tables).grid)
    lo, hi = as_date(found[0]["lo"]), as_date(found[0]["hi"])
    need_lo, need_hi = month_after(first_day), month_after(last_day)
    zeros: list[list[Any]] = []
    if lo is None or hi is None:
        zeros = [[m, *g, *NOTHING] for m in months(need_lo, need_hi) for g in sorted(groups)]
        _insert_checkpoints(tx, tables, zeros)
        return
    present = {(r["ministry_code"], r["ministry_name"], r["phase"]) for r in found}
    fresh = groups - present
    zeros += [[m, *g, *NOTHING] for m in months(lo, hi) for g in sorted(fresh)]
    if need_lo < lo:  # no delta before `lo`'s month: the earlier checkpoints are zero
        earlier = [m for m in months(need_lo, lo) if m < lo]
        zeros += [[m, *g, *NOTHING] for m in earlier for g in sorted(present | fresh)]
    _insert_checkpoints(tx, tables, zeros)
    later = [m for m in months(hi, need_hi) if m > hi]  # no delta after `hi`: copies of it
    if later:
        tx.executemany(_statements(tables).copy_month, [(m, hi) for m in later])


def _insert_checkpoints(tx: Tx, tables: Tables, rows: list[list[Any]]) -> None:
    tx.copy_rows(tables.figure_checkpoints, ("month", *GROUP_COLUMNS, *SUMS), rows)


# -- the rebuild ---------------------------------------------------------------------------
def derive_in_sql(tx: Tx, tables: Tables) -> None:
    """Fill the (empty) figure tables of `tables` from its live states rows, in SQL
    (PostgreSQL: a rebuild after its bulk load; `project_states.derive_figure_tables`)."""
    derive_spans_sql(tx, tables)
    fill_name_keys(tx, tables)
    derive_sums_sql(tx, tables)


def analyze_sums_sql(tables: Tables) -> list[sql.Composed]:
    """The statistics of the deltas and checkpoints: their keys only. The queries filter and
    group them by day or month and group, never by a sum; the 15 sums (six of them numeric at
    up to 20 decimals) were most of what `ANALYZE` spent on them."""
    return [
        sql.SQL("ANALYZE {} ({})").format(table, sql.SQL(", ").join(ident(n) for n in columns))
        for table, columns in (
            (tables.figure_deltas, ("day", *GROUP_COLUMNS)),
            (tables.figure_checkpoints, ("month", *GROUP_COLUMNS)),
        )
    ]


# Project ids are UUIDs in text: their first hex digit splits them into even parts.
SPAN_PARTS: tuple[tuple[str | None, str | None], ...] = ((None, "8"), ("8", None))


def derive_spans_sql(
    tx: Tx, tables: Tables, part: tuple[str | None, str | None] = (None, None)
) -> None:
    """The spans of the projects whose id is in [part[0], part[1]) (None: unbounded), from
    the live states rows; the parts of SPAN_PARTS may be derived concurrently."""
    low, high = part
    bounds = sql.SQL("").join(
        [
            sql.SQL(" AND project_id >= {}").format(sql.Literal(low)) if low else sql.SQL(""),
            sql.SQL(" AND project_id < {}").format(sql.Literal(high)) if high else sql.SQL(""),
        ]
    )
    tx.execute(
        sql.SQL(_SPANS_SQL).format(
            spans=tables.spans,
            states=tables.states,
            bounds=bounds,
            cols=_SUMS,
            cadrage=sql.Literal(CADRAGE),
            schedule_quotient=quotient_sql("e - be", "be - st"),
            budget_quotient=quotient_sql("c - b", "b"),
            schedule_drift=half_even_sql("q.ys"),
            budget_drift=half_even_sql("q.yb"),
        )
    )


# The count that guards each money sum: a span that does not count there adds exactly 0 to
# it, of scale 0 (`figures.contribution`, `_SPANS_SQL`), so the deltas' sum of it skips that
# span's rows (FILTER), with the same value and scale: fewer numeric additions (≈14 % of
# the deltas' CPU on the 1M-event portfolio, where 28 % of the spans have no cost).
SUM_GUARDS: dict[str, str] = {
    "cost": "costed",
    "engaged_cost": "costed",
    "schedule_drift": "schedules",
    "budget_drift": "budgets",
    "drifting_cost": "budgets",
    "drifting_base": "budgets",
}
assert set(SUM_GUARDS) == MONEY_SUMS


def _guarded_sum(name: str) -> sql.Composable:
    """sum(name) over the rows its guard counts (NULL when none: coalesced where kept)."""
    if name not in SUM_GUARDS:
        return sql.SQL("sum({})").format(ident(name))
    return sql.SQL("sum({}) FILTER (WHERE {} <> 0)").format(ident(name), ident(SUM_GUARDS[name]))


def derive_sums_sql(tx: Tx, tables: Tables) -> None:
    """The daily deltas and the monthly checkpoints, from the spans (all derived)."""
    signed = sql.SQL(", ").join(sql.SQL("-{}").format(ident(n)) for n in SUMS)
    guarded = sql.SQL(", ").join(
        sql.SQL("coalesce({}, 0) AS {}" if n in SUM_GUARDS else "{} AS {}").format(
            _guarded_sum(n), ident(n)
        )
        for n in SUMS
    )
    totals = sql.SQL(", ").join(sql.SQL("sum({0}) AS {0}").format(ident(n)) for n in SUMS)
    tx.execute(
        sql.SQL(
            "INSERT INTO {deltas} (day, {group}, {cols}) "
            "SELECT day, {group}, {totals} FROM ("
            "SELECT valid_from AS day, ministry_code, coalesce(ministry_name, '') AS "
            "ministry_name, phase, {cols} FROM {spans} WHERE projects = 1 UNION ALL "
            "SELECT valid_to, ministry_code, coalesce(ministry_name, ''), phase, {signed} "
            "FROM {spans} WHERE projects = 1 AND valid_to IS NOT NULL) d "
            "GROUP BY day, {group} HAVING {nonzero} ORDER BY day"
        ).format(
            deltas=tables.figure_deltas,
            spans=tables.spans,
            group=GROUP,
            cols=_SUMS,
            totals=guarded,
            signed=signed,
            # the same aggregates as the columns' (NULL <> 0 is not true: none counted, 0)
            nonzero=sql.SQL(" OR ").join(sql.SQL("{} <> 0").format(_guarded_sum(n)) for n in SUMS),
        )
    )
    running = sql.SQL(", ").join(
        sql.SQL(
            "sum(coalesce(m.{0}, 0)) OVER (PARTITION BY g.ministry_code, g.ministry_name, g.phase "
            "ORDER BY a.month)"
        ).format(ident(n))
        for n in SUMS
    )
    tx.execute(
        sql.SQL(
            "INSERT INTO {cp} (month, {group}, {cols}) "
            "WITH m AS (SELECT (date_trunc('month', day) + interval '1 month')::date AS month, "
            "{group}, {totals} FROM {deltas} GROUP BY 1, 2, 3, 4), "
            "a AS (SELECT generate_series(min(month), max(month), interval '1 month')::date "
            "AS month FROM m), "
            "g AS (SELECT DISTINCT {group} FROM m) "
            "SELECT a.month, g.ministry_code, g.ministry_name, g.phase, {running} "
            "FROM a CROSS JOIN g LEFT JOIN m ON m.month = a.month "
            "AND m.ministry_code = g.ministry_code AND m.ministry_name = g.ministry_name "
            "AND m.phase = g.phase ORDER BY a.month"
        ).format(
            cp=tables.figure_checkpoints,
            deltas=tables.figure_deltas,
            group=GROUP,
            cols=_SUMS,
            totals=totals,
            running=running,
        )
    )


def drift_sql(part: str, whole: str) -> sql.Composable:
    """part × 100 / whole rounded half-even to DRIFT_PLACES decimals, as `figures.drift_pct`.

    The quotient is taken to 60 decimals: a true tie (an expansion that ends at the 21st
    decimal) is then exact, and no other value can round to one (its distance from a tie is
    far above 1e-60). `round()` on numeric rounds a tie away from zero, so a tie takes the even
    neighbour explicitly (y/2 is never itself a tie)."""
    return half_even_sql(quotient_sql(part, whole))


def quotient_sql(part: str, whole: str) -> sql.Composable:
    """part × 100 / whole × 10^DRIFT_PLACES, to 60 decimals (see `drift_sql`)."""
    return sql.SQL("((100 * ({}))::numeric(100, 60) / ({}) * {})").format(
        sql.SQL(part), sql.SQL(whole), sql.Literal(Decimal(1).scaleb(DRIFT_PLACES))
    )


def half_even_sql(y: str | sql.Composable) -> sql.Composable:
    """`y` (a quotient of `quotient_sql`) rounded half-even, scaled back to DRIFT_PLACES. It
    names `y` up to four times: give it a column, so that the division is made once."""
    y = sql.SQL(y) if isinstance(y, str) else y
    return sql.SQL(
        "(CASE WHEN abs({y} - trunc({y})) = 0.5 THEN 2 * round({y} / 2) ELSE round({y}) END "
        "* {quantum})"
    ).format(y=y, quantum=sql.Literal(DRIFT_QUANTUM))


# The spans of the live rows and their contributions, as `figures.contribution` computes
# them (the drifts through `drift_sql`).
_SPANS_SQL = (
    "INSERT INTO {spans} (project_id, valid_from, valid_to, ministry_code, ministry_name, "
    "phase, {cols}, name, figures_withheld, current_cost, planned_end) "
    # the window in the scan's own subquery: its sort carries the table's columns only, not
    # the quotients and flags computed from them (≈8 % less CPU for the statement)
    "WITH s AS (SELECT project_id, valid_from, "
    # byte order for the window's sort (an equality partition: the same groups as the
    # default collation's, without its costly comparisons)
    'lead(valid_from) OVER (PARTITION BY project_id COLLATE "C" ORDER BY valid_from) AS vt, '
    "ministry_code, ministry_name, phase, "
    "name, figures_withheld AS fw, cost AS raw_cost, planned_end AS raw_end, "
    "in_portfolio AS f, coalesce(interministerial, false) AS im, "
    "CASE WHEN figures_withheld THEN NULL ELSE cost END AS c, "
    "CASE WHEN figures_withheld THEN NULL ELSE baseline_cost END AS b, "
    "CASE WHEN figures_withheld THEN NULL ELSE planned_end END AS e, "
    "CASE WHEN figures_withheld THEN NULL ELSE baseline_end END AS be, "
    "start_date AS st, "
    "coalesce(phase = {cadrage}, false) AS cad "
    "FROM {states} WHERE recorded_to IS NULL{bounds}), "
    "t AS (SELECT *, f AND c IS NOT NULL AS costed, "
    "f AND NOT cad AND st IS NOT NULL AND e IS NOT NULL AS dur, "
    "f AND st IS NOT NULL AND e IS NOT NULL AND be IS NOT NULL AND be > st AS sch, "
    "f AND c IS NOT NULL AND b IS NOT NULL AS bud FROM s) "
    "SELECT project_id, valid_from, vt, ministry_code, ministry_name, phase, "
    "CASE WHEN f THEN 1 ELSE 0 END, "
    "CASE WHEN f AND im THEN 1 ELSE 0 END, "
    "CASE WHEN costed THEN 1 ELSE 0 END, "
    "CASE WHEN costed THEN c ELSE 0 END, "
    "CASE WHEN costed AND NOT cad THEN c ELSE 0 END, "
    "CASE WHEN dur THEN 1 ELSE 0 END, "
    "CASE WHEN dur THEN e - st ELSE 0 END, "
    "CASE WHEN sch THEN 1 ELSE 0 END, "
    "CASE WHEN sch THEN {schedule_drift} ELSE 0 END, "
    "CASE WHEN sch THEN e - be ELSE 0 END, "
    "CASE WHEN sch THEN be - st ELSE 0 END, "
    "CASE WHEN bud THEN 1 ELSE 0 END, "
    "CASE WHEN bud THEN {budget_drift} ELSE 0 END, "
    "CASE WHEN bud THEN c ELSE 0 END, "
    "CASE WHEN bud THEN b ELSE 0 END, "
    "name, fw, raw_cost, raw_end "
    # each quotient divided once per row (OFFSET 0 keeps the planner from inlining the
    # subquery, which would repeat the division wherever the rounding names it)
    "FROM t CROSS JOIN LATERAL (SELECT CASE WHEN sch THEN {schedule_quotient} END AS ys, "
    "CASE WHEN bud THEN {budget_quotient} END AS yb OFFSET 0) q"
)


def derive_from_states(tx: Tx, tables: Tables, live: dict[str, list[ProjectState]]) -> None:
    """Fill the (empty) figure tables from every project's live states, by valid_from."""
    pids = sorted(live)
    for start in range(0, len(pids), CHUNK):
        refresh(tx, tables, {p: live[p] for p in pids[start : start + CHUNK]})


def spans_outdated(tx: Tx, tables: Tables) -> bool:
    """Whether the spans table lacks the compared columns (`SPAN_COMPARED`: made by an
    earlier version); the figure tables are then made anew and derived again."""
    name = tables.name("pr_spans")
    if tx.dialect == "postgres":
        found = tx.scalar(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = %s AND column_name = %s",
            (name, SPAN_COMPARED[-1]),
        )
        return not found
    columns = {r["name"] for r in tx.fetch(sql.SQL("PRAGMA table_info({})").format(ident(name)))}
    return SPAN_COMPARED[-1] not in columns


def figures_missing(tx: Tx, tables: Tables) -> bool:
    """Whether live states exist without their spans (tables made before the spans were)."""
    spans = tx.scalar(
        sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT 1) x").format(tables.spans)
    )
    if spans:
        return False
    return bool(
        tx.scalar(
            sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT 1) x").format(tables.states)
        )
    )


# -- the query -----------------------------------------------------------------------------
def _money_sum(tx: Tx, name: str, alias: str = "") -> sql.Composable:
    column = sql.SQL("{}.{}").format(ident(alias), ident(name)) if alias else ident(name)
    fn = "dec_sum" if tx.dialect == "sqlite" and name in MONEY_SUMS else "sum"
    return sql.SQL("{}({}) AS {}").format(sql.SQL(fn), column, ident(name))


def group_sums(tx: Tx, as_of: date, tables: Tables = LIVE) -> list[Row]:
    """The sums on `as_of` per (ministry code as recorded, phase), with the code's stable
    code and reference name: the latest checkpoint plus the deltas since."""
    cp, deltas = tables.figure_checkpoints, tables.figure_deltas
    latest = sql.SQL("(SELECT max(month) FROM {} WHERE month <= %s)").format(cp)
    query = sql.SQL(
        "SELECT u.ministry_code, u.ministry_name, u.phase, m.stable_code, m.name, {totals} "
        "FROM (SELECT {group}, {cols} FROM {cp} WHERE month = {latest} UNION ALL "
        "SELECT {group}, {cols} FROM {deltas} WHERE day <= %s "
        "AND day >= coalesce({latest}, %s)) u "
        "LEFT JOIN {codes} m ON m.code = u.ministry_code "
        "GROUP BY u.ministry_code, u.ministry_name, u.phase, m.stable_code, m.name"
    ).format(
        totals=sql.SQL(", ").join(_money_sum(tx, n, "u") for n in SUMS),
        cols=_SUMS,
        group=GROUP,
        cp=cp,
        deltas=deltas,
        latest=latest,
        codes=tables.ministry_codes,
    )
    return tx.fetch(query, [as_of, as_of, as_of, date.min])


Key = tuple[str, str]  # ("", ""): overall; ("ministry", code); ("phase", phase)
OVERALL: Key = ("", "")


def _alive(tx: Tx, tables: Tables) -> sql.Composable:
    if tx.dialect == "postgres":
        return sql.SQL("daterange(s.valid_from, s.valid_to) @> %s::date")
    return sql.SQL("s.valid_from <= %s AND (s.valid_to IS NULL OR s.valid_to > %s)")


def medians(tx: Tx, as_of: date, tables: Tables = LIVE) -> dict[Key, tuple[Medians, Medians]]:
    """The (schedule, budget) drift medians on `as_of`, overall and per stable ministry and
    phase, over the spans alive on that date."""
    if tx.dialect == "postgres":
        # One sort per figure and group: the lower middle is percentile_disc(0.5), the
        # upper one the next row, percentile_disc(0.5 + 1e-10) (exact for n < 5e9 rows: for an
        # even n, ceil(n/2 + 1e-10 n) = n/2 + 1; for an odd one it is the middle row again).
        rows = tx.fetch(
            sql.SQL(
                "SELECT ministry, phase, GROUPING(ministry) AS gm, GROUPING(phase) AS gp, "
                "count(*) FILTER (WHERE schedules = 1) AS sn, "
                "percentile_disc(ARRAY[0.5, 0.5000000001]) WITHIN GROUP "
                "(ORDER BY schedule_drift) FILTER (WHERE schedules = 1) AS s, "
                "count(*) FILTER (WHERE budgets = 1) AS bn, "
                "percentile_disc(ARRAY[0.5, 0.5000000001]) WITHIN GROUP "
                "(ORDER BY budget_drift) FILTER (WHERE budgets = 1) AS b "
                "FROM (SELECT coalesce(m.stable_code, s.ministry_code) AS ministry, s.phase, "
                "s.schedules, s.schedule_drift, s.budgets, s.budget_drift FROM {spans} s "
                "LEFT JOIN {codes} m ON m.code = s.ministry_code "
                "WHERE s.projects = 1 AND {alive}) x "
                "GROUP BY GROUPING SETS ((), (ministry), (phase))"
            ).format(spans=tables.spans, codes=tables.ministry_codes, alive=_alive(tx, tables)),
            [as_of],
        )
        out: dict[Key, tuple[Medians, Medians]] = {}
        for r in rows:
            if r["gm"] and r["gp"]:
                key = OVERALL
            else:
                key = ("phase", r["phase"]) if r["gm"] else ("ministry", r["ministry"])
            s_lo, s_hi = r["s"] or (None, None)
            b_lo, b_hi = r["b"] or (None, None)
            out[key] = (Medians(s_lo, s_hi, int(r["sn"])), Medians(b_lo, b_hi, int(r["bn"])))
        return out
    rows = tx.fetch(
        sql.SQL(
            "SELECT coalesce(m.stable_code, s.ministry_code) AS ministry, s.phase, s.schedules, "
            "s.schedule_drift, s.budgets, s.budget_drift FROM {spans} s "
            "LEFT JOIN {codes} m ON m.code = s.ministry_code WHERE s.projects = 1 AND {alive}"
        ).format(spans=tables.spans, codes=tables.ministry_codes, alive=_alive(tx, tables)),
        [as_of, as_of],
    )
    schedule: dict[Key, list[Decimal]] = {}
    budget: dict[Key, list[Decimal]] = {}
    for r in rows:
        for key in (OVERALL, ("ministry", r["ministry"]), ("phase", r["phase"])):
            schedule.setdefault(key, [])
            budget.setdefault(key, [])
            if r["schedules"]:
                schedule[key].append(Decimal(r["schedule_drift"]))
            if r["budgets"]:
                budget[key].append(Decimal(r["budget_drift"]))
    return {k: (Medians.of(schedule[k]), Medians.of(budget[k])) for k in schedule}


Figures = tuple[Vector, str | None, tuple[Medians, Medians]]  # sums, name, medians


def _keyed_in_python(tx: Tx, as_of: date, tables: Tables, with_medians: bool) -> dict[Key, Figures]:
    """Overall, per stable ministry and per phase: the sums (`group_sums`, added up here),
    the ministry's name and the medians (`medians`)."""
    sums: dict[Key, Vector] = {}
    names: dict[Key, set[str]] = {}
    for row in group_sums(tx, as_of, tables):
        values = _vector(row)
        if not values[0]:
            continue  # no project followed in this group on that date
        ministry = ("ministry", row["stable_code"] or row["ministry_code"])
        for key in (OVERALL, ministry, ("phase", row["phase"])):
            _add(sums, key, values, 1)
        name = row["name"] or row["ministry_name"]  # the reference's, else as recorded
        names.setdefault(ministry, set()).update([name] if name else [])
    middles = medians(tx, as_of, tables) if sums and with_medians else {}
    return {
        key: (values, min(names.get(key, ()), default=None), middles.get(key, _NO_MEDIANS))
        for key, values in sums.items()
    }


_NO_MEDIANS = (Medians(), Medians())


def _keyed_in_postgres(
    tx: Tx, as_of: date, tables: Tables, with_medians: bool
) -> dict[Key, Figures]:
    """What `_keyed_in_python` gives, in one statement: the checkpoint plus the deltas,
    grouped by stable ministry and phase in SQL (exact numeric sums), joined to the medians
    (see `medians`)."""
    cp, deltas = tables.figure_checkpoints, tables.figure_deltas
    latest = sql.SQL("(SELECT max(month) FROM {} WHERE month <= %s)").format(cp)
    totals = sql.SQL(", ").join(sql.SQL("sum({0}) AS {0}").format(ident(n)) for n in SUMS)
    middles = sql.SQL(
        ", percentile_disc(ARRAY[0.5, 0.5000000001]) WITHIN GROUP (ORDER BY schedule_drift) "
        "FILTER (WHERE schedules = 1) AS s, "
        "percentile_disc(ARRAY[0.5, 0.5000000001]) WITHIN GROUP (ORDER BY budget_drift) "
        "FILTER (WHERE budgets = 1) AS b"
    )
    query = sql.SQL(
        "WITH u AS (SELECT {group}, {cols} FROM {cp} WHERE month = {latest} UNION ALL "
        "SELECT {group}, {cols} FROM {deltas} WHERE day <= %s AND day >= coalesce({latest}, %s)), "
        "g AS (SELECT ministry_code, ministry_name, phase, {totals} FROM u "
        "GROUP BY ministry_code, ministry_name, phase HAVING sum(projects) > 0), "
        "r AS (SELECT coalesce(m.stable_code, g.ministry_code) AS ministry, g.phase, "
        "coalesce(m.name, nullif(g.ministry_name, '')) AS name, {g_cols} FROM g "
        "LEFT JOIN {codes} m ON m.code = g.ministry_code), "
        "k AS (SELECT ministry, phase, GROUPING(ministry) AS gm, GROUPING(phase) AS gp, "
        "min(name) AS name, {totals} FROM r GROUP BY GROUPING SETS ((), (ministry), (phase)))"
        "{medians_cte} "
        "SELECT k.*{medians_cols} FROM k {medians_join}"
    )
    medians_cte = sql.SQL(
        ", a AS (SELECT coalesce(m.stable_code, s.ministry_code) AS ministry, s.phase, "
        "s.schedules, s.schedule_drift, s.budgets, s.budget_drift FROM {spans} s "
        "LEFT JOIN {codes} m ON m.code = s.ministry_code "
        "WHERE s.projects = 1 AND daterange(s.valid_from, s.valid_to) @> %s::date), "
        "d AS (SELECT ministry, phase, GROUPING(ministry) AS gm, GROUPING(phase) AS gp{middles} "
        "FROM a GROUP BY GROUPING SETS ((), (ministry), (phase)))"
    ).format(spans=tables.spans, codes=tables.ministry_codes, middles=middles)
    params: list[Any] = [as_of, as_of, as_of, date.min]
    if with_medians:
        params.append(as_of)
    rows = tx.fetch(
        query.format(
            group=GROUP,
            cols=_SUMS,
            cp=cp,
            deltas=deltas,
            latest=latest,
            totals=totals,
            g_cols=sql.SQL(", ").join(ident("g", n) for n in SUMS),
            codes=tables.ministry_codes,
            medians_cte=medians_cte if with_medians else sql.SQL(""),
            medians_cols=sql.SQL(", d.s, d.b") if with_medians else sql.SQL(""),
            medians_join=sql.SQL(
                "LEFT JOIN d ON d.gm = k.gm AND d.gp = k.gp "
                "AND d.ministry IS NOT DISTINCT FROM k.ministry "
                "AND d.phase IS NOT DISTINCT FROM k.phase"
            )
            if with_medians
            else sql.SQL(""),
        ),
        params,
    )
    found: dict[Key, Figures] = {}
    for r in rows:
        if r["projects"] is None:
            continue  # the overall row over nothing
        if r["gm"] and r["gp"]:
            key = OVERALL
        else:
            key = ("phase", r["phase"]) if r["gm"] else ("ministry", r["ministry"])
        s_lo, s_hi = r.get("s") or (None, None)
        b_lo, b_hi = r.get("b") or (None, None)
        values = _vector(r)
        found[key] = (
            values,
            r["name"],
            (
                Medians(s_lo, s_hi, values[_SCHEDULES]),
                Medians(b_lo, b_hi, values[_BUDGETS]),
            ),
        )
    return found


_SCHEDULES, _BUDGETS = SUMS.index("schedules"), SUMS.index("budgets")


def materialised_summary(
    tx: Tx, as_of: date, tables: Tables = LIVE, *, with_medians: bool = True
) -> dict[str, Any]:
    """The portfolio figures on `as_of` (live knowledge) from the materialised tables: the
    same answer as `portfolio_summary(states_at(tx, as_of, None))` (`with_medians=False`,
    for measuring what the medians cost only, leaves them None)."""
    keyed = (_keyed_in_postgres if tx.dialect == "postgres" else _keyed_in_python)(
        tx, as_of, tables, with_medians
    )

    def figures(key: Key) -> dict[str, Any]:
        values, _, (schedule, budget) = keyed.get(key, (list(NOTHING), None, _NO_MEDIANS))
        return figures_of(dict(zip(SUMS, values, strict=True)), schedule, budget)

    return {
        **figures(OVERALL),
        "by_ministry": {
            k: {"name": keyed[("ministry", k)][1], **figures(("ministry", k))}
            for _, k in sorted(x for x in keyed if x[0] == "ministry")
        },
        "by_phase": {
            k: figures(("phase", k)) for _, k in sorted(x for x in keyed if x[0] == "phase")
        },
    }
