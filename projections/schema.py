"""The read-model tables of the project-states projection, for both dialects.

Tables come in sets named by a suffix so that a rebuild can fill fresh tables while the
live ones keep serving, then swap them in one transaction.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from domain.project_facts import FACTS, Fact
from projections.db import Dialect, Tx, ident
from projections.figures import MONEY_SUMS, SUMS

NAME_KEYS_PREFIX = "pr_name_keys_u"
# The name keys' table, named for the Unicode version `str.casefold` follows here (15.0.0 on
# Python 3.11): keys made under another version may order names differently.
NAME_KEYS = NAME_KEYS_PREFIX + unicodedata.unidata_version.replace(".", "_")

PROJECTION = "project_states"

STATE_KEYS: tuple[str, ...] = (
    "project_id",
    "valid_from",
    "recorded_from",
    "recorded_to",
    "version",
)


def state_columns(facts: Sequence[Fact]) -> tuple[str, ...]:
    """The columns of a states table: its keys, one per fact kept apart, then `extra`."""
    return (*STATE_KEYS, *(f.column for f in facts if f.column is not None), "extra")


STATE_COLUMNS: tuple[str, ...] = state_columns(FACTS)
EVENT_COLUMNS: tuple[str, ...] = (
    "project_id",
    "version",
    "position",
    "sort_date",
    "effective_date",
    "recorded_at",
    "type",
    "actor",
    "source",
    "narrative",
    "correction",
    "topic",
    "state",
)

# The SQL type of each kind of column, per dialect.
COLUMN_TYPES: dict[Dialect, dict[str, str]] = {
    "postgres": {
        "date": "date",
        "ts": "timestamptz",
        "money": "numeric",
        "bool": "boolean",
        "int": "bigint",
        "bytes": "bytea",
        "text": "text",
    },
    "sqlite": {
        "date": "text",
        "ts": "text",
        "money": "text",
        "bool": "integer",
        "int": "integer",
        "bytes": "blob",
        "text": "text",
    },
}


@dataclass(frozen=True)
class Tables:
    """The names of one set of read-model tables."""

    suffix: str = ""

    def name(self, base: str) -> str:
        return f"{base}{self.suffix}"

    @property
    def states(self) -> sql.Identifier:
        return ident(self.name("pr_states"))

    @property
    def events(self) -> sql.Identifier:
        return ident(self.name("pr_events"))

    @property
    def projects(self) -> sql.Identifier:
        return ident(self.name("pr_projects"))

    @property
    def ministry_codes(self) -> sql.Identifier:
        """Every ministry code (stable or alias) -> its stable code and current name."""
        return ident(self.name("pr_ministry_codes"))

    @property
    def spans(self) -> sql.Identifier:
        """Each live row's span [valid_from, valid_to) and its contribution to the figures."""
        return ident(self.name("pr_spans"))

    @property
    def name_keys(self) -> sql.Identifier:
        """PostgreSQL: each span's name -> its casefolded form (Python's `casefold`, which no
        SQL function gives), the order of the changes between two dates (`COLLATE "C"`).
        One table for every set: a name's key never changes, a rebuild only adds to it. Its
        name carries the Unicode version of this Python's `casefold` (`NAME_KEYS`): under
        another version the keys are made anew at start-up (`drop_stale_name_keys`)."""
        return ident(NAME_KEYS)

    @property
    def figure_deltas(self) -> sql.Identifier:
        """Per (day, ministry code as recorded, phase): what the figures' sums change by."""
        return ident(self.name("pr_figure_deltas"))

    @property
    def figure_checkpoints(self) -> sql.Identifier:
        """Per (first day of a month, ministry code, phase): the sums of the deltas before it."""
        return ident(self.name("pr_figure_checkpoints"))

    @property
    def tracking_name(self) -> str:
        return PROJECTION + self.suffix

    def all(self) -> tuple[str, ...]:
        return tuple(
            self.name(b)
            for b in (
                "pr_states",
                "pr_events",
                "pr_projects",
                "pr_ministry_codes",
                "pr_spans",
                "pr_figure_deltas",
                "pr_figure_checkpoints",
            )
        )


LIVE = Tables()
REBUILD = Tables("__rebuild")


def column_types(dialect: Dialect) -> dict[str, sql.SQL]:
    """The column types of `dialect` by their names in our DDL ({date}, {ts}, {money}...)."""
    return {k: sql.SQL(v) for k, v in COLUMN_TYPES[dialect].items()}


def track(tx: Tx, name: str) -> None:
    """The tracking table (one row per projection: position, last error) and `name`'s row."""
    t = COLUMN_TYPES[tx.dialect]
    tx.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS pr_tracking (name text PRIMARY KEY, "
            "position {int} NOT NULL DEFAULT 0, updated_at {ts}, last_error text, "
            "error_at {ts})"
        ).format(int=sql.SQL(t["int"]), ts=sql.SQL(t["ts"]))
    )
    tx.execute(
        "INSERT INTO pr_tracking (name, position) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING",
        (name,),
    )


def state_column_types(facts: Sequence[Fact], dialect: Dialect) -> sql.Composable:
    """The column definitions of a states table, in `state_columns(facts)` order."""
    t = COLUMN_TYPES[dialect]
    keys = (
        "project_id text NOT NULL, valid_from {date} NOT NULL, recorded_from {ts} NOT NULL, "
        "recorded_to {ts}, version integer NOT NULL"
    )
    kept = [
        sql.SQL("{} {}").format(ident(f.column), sql.SQL(t[f.kind]))
        for f in facts
        if f.column is not None
    ]
    return sql.SQL(", ").join(
        [sql.SQL(keys).format(date=sql.SQL(t["date"]), ts=sql.SQL(t["ts"])), *kept]
        + [sql.SQL("extra text")]
    )


def create_tables(tx: Tx, tables: Tables, *, tag: str = "", indexes: bool = True) -> None:
    """Create one set of tables and their tracking row (idempotent); with `indexes`, their
    keys and indexes too, else (PostgreSQL only) `index_groups` adds them after a bulk load."""
    t = column_types(tx.dialect)
    track(tx, tables.tracking_name)
    tx.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {tbl} ({columns})").format(
            tbl=tables.states, columns=state_column_types(FACTS, tx.dialect)
        )
    )
    events_key = sql.SQL(", PRIMARY KEY (project_id, version)" if indexes else "")
    tx.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {tbl} ("
            "project_id text NOT NULL, version integer NOT NULL, position {int} NOT NULL, "
            "sort_date {date} NOT NULL, effective_date {date} NOT NULL, recorded_at {ts} NOT NULL, "
            "type text NOT NULL, actor text, source text, narrative text, correction {bool}, "
            "topic text NOT NULL, state {bytes} NOT NULL{key})"
        ).format(tbl=tables.events, key=events_key, **t)
    )
    tx.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {tbl} (project_id text {key}NOT NULL, "
            "registered_on {date} NOT NULL, tail_valid_from {date} NOT NULL)"
        ).format(tbl=tables.projects, key=sql.SQL("PRIMARY KEY " if indexes else ""), **t)
    )
    tx.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {tbl} (code text PRIMARY KEY, stable_code text NOT NULL, "
            "name text NOT NULL)"
        ).format(tbl=tables.ministry_codes)
    )
    create_figure_tables(tx, tables, key=indexes)
    if tx.dialect == "postgres":
        tx.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {tbl} (name text PRIMARY KEY, name_key text NOT NULL)"
            ).format(tbl=tables.name_keys)
        )
    if indexes:
        create_indexes(tx, tables, tag)


def create_indexes(tx: Tx, tables: Tables, tag: str = "") -> None:
    """The indexes of `index_statements` on one set of tables (idempotent); on SQLite, under
    these tables' own names, any a rebuild left under its suffix dropped first."""
    if tx.dialect == "sqlite" and not tag:
        drop_stray_indexes(tx, tables)
    for statement in index_statements(tx.dialect, tables, tag):
        tx.execute(statement)


def drop_stray_indexes(tx: Tx, tables: Tables) -> None:
    """SQLite, which cannot rename an index: drop the indexes of `index_statements` that a
    rebuild left on these tables under its own suffix (the swap renames the tables, not
    their indexes), so that only the ones under these tables' own names remain."""
    key = tables.suffix.strip("_") or LIVE_KEY
    prefixes = (*INDEX_NAMES, "pr_spans_alive")
    names = [tables.name(base) for base in ("pr_states", "pr_events", "pr_spans")]
    marks = sql.SQL(", ").join(sql.Placeholder() for _ in names)
    query = sql.SQL(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ({})"
    ).format(marks)
    for (name,) in tx.fetch_tuples(query, names):
        base, _, suffix = str(name).rpartition("_")
        if base in prefixes and suffix != key:
            tx.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(ident(str(name))))


def sums_columns(dialect: Dialect, *, one: bool = False) -> sql.Composable:
    """The column definitions of the figures' sums (projections/figures.py `SUMS`); `one`:
    one project's (PostgreSQL `integer` counts, whose sums are a fast `bigint`)."""
    t = COLUMN_TYPES[dialect]
    count = "integer" if one and dialect == "postgres" else t["int"]
    return sql.SQL(", ").join(
        sql.SQL("{} {} NOT NULL").format(
            ident(name), sql.SQL(t["money"] if name in MONEY_SUMS else count)
        )
        for name in SUMS
    )


# The spans' sums without statistics: only `projects` is ever in a WHERE (the medians, the
# deltas); `schedules` and `budgets` only in aggregates' FILTERs, the rest in select lists.
UNSAMPLED_SUMS: tuple[str, ...] = tuple(n for n in SUMS if n != "projects")


def create_figure_tables(tx: Tx, tables: Tables, *, key: bool = True) -> None:
    """The materialised figures' tables (projections/figure_tables.py); without `key`
    (a bulk load, PostgreSQL) the spans' key comes with `index_groups`."""
    t = column_types(tx.dialect)
    sums = sums_columns(tx.dialect)
    fresh = tx.dialect == "postgres" and bool(
        tx.scalar("SELECT to_regclass(%s) IS NULL", [tables.name("pr_spans")])
    )
    tx.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {tbl} (project_id text NOT NULL, "
            "valid_from {date} NOT NULL, valid_to {date}, ministry_code text NOT NULL, "
            "ministry_name text, phase text NOT NULL, {sums}, name text, "
            "figures_withheld {bool}, current_cost {money}, planned_end {date}{key})"
        ).format(
            tbl=tables.spans,
            sums=sums_columns(tx.dialect, one=True),
            key=sql.SQL(", PRIMARY KEY (project_id, valid_from)" if key else ""),
            **t,
        )
    )
    if fresh:
        # No statistics for the sums the queries never filter, join or group by (`projects`
        # is filtered): half of what `ANALYZE` of the spans cost, whatever their number.
        tx.execute(
            sql.SQL("ALTER TABLE {} {}").format(
                tables.spans,
                sql.SQL(", ").join(
                    sql.SQL("ALTER COLUMN {} SET STATISTICS 0").format(ident(n))
                    for n in UNSAMPLED_SUMS
                ),
            )
        )
    for tbl, day in ((tables.figure_deltas, "day"), (tables.figure_checkpoints, "month")):
        tx.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {tbl} ({day} {date} NOT NULL, "
                "ministry_code text NOT NULL, ministry_name text NOT NULL, phase text NOT NULL, "
                "{sums}, PRIMARY KEY ({day}, ministry_code, ministry_name, phase))"
            ).format(tbl=tbl, day=ident(day), sums=sums, **t)
        )


# PostgreSQL. A store whose spans had the former GiST index (pr_spans_alive_live) lacks the
# compared columns too: its figure tables, that index with them, are made anew at start-up.
SPANS_ALIVE = "pr_spans_during"
# The names of the indexes of `index_statements`, before their suffix: a rebuild makes them
# with its own suffix, and the swap gives them the live tables' (`index_renames`).
INDEX_NAMES: tuple[str, ...] = ("pr_states_lookup", "pr_events_sort", "pr_states_live", SPANS_ALIVE)
LIVE_KEY = "live"


def index_renames(tag: str) -> list[sql.Composed]:
    """After a swap (PostgreSQL): the fresh tables' indexes renamed to the names the live
    tables' set-up looks for, so that it does not build them again under those names."""
    return [
        sql.SQL("ALTER INDEX IF EXISTS {} RENAME TO {}").format(
            ident(f"{name}_{tag}"), ident(f"{name}_{LIVE_KEY}")
        )
        for name in INDEX_NAMES
    ]


def index_statements(dialect: Dialect, tables: Tables, tag: str) -> list[sql.Composed]:
    """The CREATE INDEX statements of one set of tables (idempotent)."""
    key = tag or tables.suffix.strip("_") or LIVE_KEY
    lookup, events_sort, live, _ = INDEX_NAMES
    statements: list[sql.Composed] = [
        sql.SQL("CREATE INDEX IF NOT EXISTS {idx} ON {tbl} ({cols})").format(
            idx=ident(f"{index}_{key}"), tbl=table, cols=sql.SQL(columns)
        )
        for index, table, columns in (
            (lookup, tables.states, "project_id, valid_from, recorded_from"),
            (events_sort, tables.events, "sort_date, project_id"),
        )
    ]
    if dialect == "postgres":
        statements.append(
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {idx} ON {tbl} (project_id, valid_from) "
                "WHERE recorded_to IS NULL"
            ).format(idx=ident(f"{live}_{key}"), tbl=tables.states)
        )

        # The spans alive on a date: one SP-GiST index over their date ranges, covering what
        # the medians and the changes between two dates read, so that both come from
        # index-only scans (a GiST one answered the same scan a third slower and took 3.6
        # times the CPU to build; a second index for the changes doubled the spans' index
        # build of a rebuild).
        statements.append(
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {idx} ON {tbl} USING spgist "
                "(daterange(valid_from, valid_to)) INCLUDE (project_id, valid_from, valid_to, "
                "projects, ministry_code, phase, schedules, schedule_drift, budgets, "
                "budget_drift, name, figures_withheld, current_cost, planned_end)"
            ).format(idx=ident(f"{SPANS_ALIVE}_{key}"), tbl=tables.spans)
        )
    else:
        statements.append(
            sql.SQL("CREATE INDEX IF NOT EXISTS {idx} ON {tbl} (valid_from)").format(
                idx=ident(f"pr_spans_alive_{key}"), tbl=tables.spans
            )
        )
    return statements


def spans_key(tag: str) -> str:
    """The name of the spans' unique index in a bulk load (made their primary key after)."""
    return f"pr_spans_key_{tag}"


def index_groups(tables: Tables, tag: str) -> list[tuple[sql.Identifier, list[sql.Composed]]]:
    """After a bulk load into tables made with `indexes=False` (PostgreSQL): each table and
    its keys and indexes (the tables may be indexed concurrently, one connection each)."""
    lookup, events_sort, live, alive = index_statements("postgres", tables, tag)
    pkey = "ALTER TABLE {} ADD PRIMARY KEY ({})"
    return [
        (tables.states, [lookup, live]),
        (
            tables.events,
            [sql.SQL(pkey).format(tables.events, sql.SQL("project_id, version")), events_sort],
        ),
        (tables.projects, [sql.SQL(pkey).format(tables.projects, sql.SQL("project_id"))]),
        (tables.ministry_codes, []),  # keyed from the start (the reference is upserted)
        (
            tables.spans,
            [
                # a unique index rather than a primary key: built beside the deltas' derivation,
                # which reads the spans (ADD PRIMARY KEY would lock them out)
                sql.SQL("CREATE UNIQUE INDEX {} ON {} (project_id, valid_from)").format(
                    ident(spans_key(tag or tables.suffix.strip("_") or LIVE_KEY)), tables.spans
                ),
                alive,
            ],
        ),
        (tables.figure_deltas, []),  # derived with their keys (projections/figure_tables.py)
        (tables.figure_checkpoints, []),
    ]


def drop_figure_tables(tx: Tx, tables: Tables) -> None:
    """Drop the materialised figures' tables (spans, deltas, checkpoints) of one set."""
    for table in (tables.spans, tables.figure_deltas, tables.figure_checkpoints):
        tx.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))


def drop_tables(tx: Tx, tables: Tables) -> None:
    for name in tables.all():
        tx.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(name)))
