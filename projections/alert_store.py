"""The SQL of the alerts projection: subscriptions, project facts, conditions and alerts.

Rows are written from the frozen dataclasses of `projections.alert_conditions`: the
columns are the dataclass's field names, so a value cannot land in another column.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from domain.subscription import Rule, rule_from_payload
from projections.alert_conditions import (
    OWN_COLUMNS,
    SHARED_COLUMNS,
    AlertRow,
    AlertShared,
    AlertValues,
    ConditionRow,
)
from projections.alert_values import Facts
from projections.db import CopyStream, Tx

Key = tuple[str, str]  # (subscription id, subject)
ConditionValues = tuple[str, str, bool, str | None]  # a ConditionRow's values, in its order


@dataclass(frozen=True)
class SubscriptionRow:
    """A subscription as the projection keeps it (its rule and channel as recorded)."""

    id: str
    owner: str
    rule: str
    channel: str
    target: str
    secret: str | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    digest: bool


def active_rules(tx: Tx) -> dict[str, Rule]:
    """The rule of every live subscription, by subscription id."""
    rows = tx.fetch("SELECT id, rule FROM pr_alert_subscriptions WHERE active")
    return {r["id"]: rule_from_payload(json.loads(r["rule"])) for r in rows}


def project_facts(tx: Tx) -> dict[str, Facts]:
    """What the rules last read of every project, by project id."""
    rows = tx.fetch("SELECT project_id, facts FROM pr_alert_projects")
    return {r["project_id"]: json.loads(r["facts"]) for r in rows}


def conditions(tx: Tx) -> dict[Key, ConditionRow]:
    """Every condition state, by (subscription id, subject)."""
    return _conditions(tx.fetch(_CONDITIONS))


def conditions_of_subjects(tx: Tx, subjects: Sequence[str]) -> dict[Key, ConditionRow]:
    """The condition states of these subjects (projects, "portfolio"), every subscription's."""
    found: dict[Key, ConditionRow] = {}
    for start in range(0, len(subjects), CHUNK):
        chunk = subjects[start : start + CHUNK]
        found.update(_conditions(tx.fetch(_conditions_in(len(chunk)), chunk)))
    return found


@functools.lru_cache(maxsize=512)
def _conditions_in(count: int) -> str:
    """`conditions_of_subjects`' statement for `count` subjects, rendered once."""
    return _CONDITIONS + " WHERE subject IN (" + ", ".join(["%s"] * count) + ")"


def conditions_of_subscription(tx: Tx, sid: str) -> dict[Key, ConditionRow]:
    """The condition states of one subscription, on every subject."""
    return _conditions(tx.fetch(_CONDITIONS + " WHERE subscription_id = %s", (sid,)))


_CONDITIONS = "SELECT subscription_id, subject, active, value FROM pr_alert_state"
CHUNK = 500  # parameters per IN list


def _conditions(rows: Sequence[dict[str, Any]]) -> dict[Key, ConditionRow]:
    return {
        (r["subscription_id"], r["subject"]): ConditionRow(
            r["subscription_id"], r["subject"], bool(r["active"]), r["value"]
        )
        for r in rows
    }


def add_subscription(tx: Tx, row: SubscriptionRow) -> None:
    names = [f.name for f in fields(row)]
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier("pr_alert_subscriptions"),
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.Placeholder() * len(names)),
    )
    tx.execute(query, [getattr(row, name) for name in names])


def change_rule(tx: Tx, sid: str, rule: dict[str, Any], version: int, at: datetime) -> None:
    tx.execute(
        "UPDATE pr_alert_subscriptions SET rule = %s, version = %s, updated_at = %s WHERE id = %s",
        (json.dumps(rule), version, at, sid),
    )


def change_channel(tx: Tx, sid: str, channel: dict[str, Any], version: int, at: datetime) -> None:
    tx.execute(
        "UPDATE pr_alert_subscriptions SET channel = %s, target = %s, secret = %s,"
        " digest = %s, version = %s, updated_at = %s WHERE id = %s",
        (
            channel["channel"],
            channel["target"],
            channel.get("secret"),
            bool(channel.get("digest", False)),
            version,
            at,
            sid,
        ),
    )


def delete_subscription(tx: Tx, sid: str, version: int, at: datetime) -> None:
    """Mark a subscription deleted (its alerts stay readable) and forget its conditions."""
    tx.execute(
        "UPDATE pr_alert_subscriptions SET active = %s, version = %s, updated_at = %s"
        " WHERE id = %s",
        (False, version, at, sid),
    )
    tx.execute("DELETE FROM pr_alert_state WHERE subscription_id = %s", (sid,))


def save_facts(tx: Tx, project_id: str, facts: Facts, *, known: bool) -> None:
    """Record a project's facts (`known`: it has a row already)."""
    text = json.dumps(facts)
    if known:
        tx.execute(
            "UPDATE pr_alert_projects SET facts = %s WHERE project_id = %s", (text, project_id)
        )
    else:
        tx.execute(
            "INSERT INTO pr_alert_projects (project_id, facts) VALUES (%s, %s)", (project_id, text)
        )


def save_all_facts(tx: Tx, facts: Mapping[str, Facts]) -> None:
    """Record the facts of several projects (inserted or replaced): on PostgreSQL one
    statement for the batch, not one per project, its arrays in binary (psycopg's text
    array dumper escapes every quote of the JSON in Python: slower than a row per project)."""
    if not facts:
        return
    rows = [(pid, json.dumps(f)) for pid, f in sorted(facts.items())]
    if tx.dialect == "postgres":
        tx.execute(_SAVE_ALL_FACTS, [[r[0] for r in rows], [r[1] for r in rows]])
        return
    tx.executemany(_SAVE_FACTS, rows)


_SAVE_FACTS = (
    "INSERT INTO pr_alert_projects (project_id, facts) VALUES (%s, %s)"
    " ON CONFLICT (project_id) DO UPDATE SET facts = excluded.facts"
)
_SAVE_ALL_FACTS = (
    "INSERT INTO pr_alert_projects (project_id, facts)"
    " SELECT * FROM unnest(%b::text[], %b::text[])"
    " ON CONFLICT (project_id) DO UPDATE SET facts = excluded.facts"
)


def record(tx: Tx, alerts: Sequence[AlertRow], changed: Sequence[ConditionRow]) -> None:
    """A batch's alerts (their deliveries pending), their figures and changed conditions."""
    record_rows(
        tx,
        [
            (
                a.id,
                a.subscription_id,
                a.kind,
                a.metric,
                a.value_before,
                a.value_after,
                tuple(getattr(a, n) for n in SHARED_COLUMNS),
            )
            for a in alerts
        ],
        [(c.subscription_id, c.subject, c.active, c.value) for c in changed],
    )


SMALL = 64  # at most this many alerts: one statement for the batch's writes, else COPY
# pr_alerts' columns as written: each alert's own, then its subject and cause; the figures
# (the bulk of an alert) go once per event and subject to pr_alert_figures.
_FIGURES = ("figures_before", "figures_after")
_ALERT_NAMES = OWN_COLUMNS + tuple(c for c in SHARED_COLUMNS if c not in _FIGURES)
_DELIVERY = ("status", "attempts", "first_at", "next_attempt_at")  # pending, 0, created, created
_WRITTEN = _ALERT_NAMES + _DELIVERY
_KEPT = tuple(SHARED_COLUMNS.index(c) for c in SHARED_COLUMNS if c not in _FIGURES)
FIGURE_COLUMNS = ("cause_position", "subject", *_FIGURES)
_FIGURE_AT = tuple(SHARED_COLUMNS.index(c) for c in FIGURE_COLUMNS)
_CREATED_AT = SHARED_COLUMNS.index("created_at")
_TYPES = {
    "id": "uuid",
    "cause_position": "bigint",
    "cause_version": "bigint",
    "created_at": "timestamptz",
}
_UPSERT = sql.SQL(
    "INSERT INTO pr_alert_state (subscription_id, subject, active, value)"
    " SELECT * FROM unnest(%s::text[], %s::text[], %s::boolean[], %s::text[])"
    " ON CONFLICT (subscription_id, subject)"
    " DO UPDATE SET active = excluded.active, value = excluded.value"
)
# The conditions that have a row: an UPDATE by key (no insertion attempted, no conflict
# check); on a table with room on its pages (fillfactor 70), a HOT update.
_UPDATE = sql.SQL(
    "UPDATE pr_alert_state s SET active = u.active, value = u.value"
    " FROM unnest(%s::text[], %s::text[], %s::boolean[], %s::text[])"
    " AS u (subscription_id, subject, active, value)"
    " WHERE s.subscription_id = u.subscription_id AND s.subject = u.subject"
)


def _unnest(names: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("%s::{}[]").format(sql.SQL(_TYPES.get(c, "text"))) for c in names
    )


def _names(names: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(map(sql.Identifier, names))


_ALERTS = sql.SQL(
    "new_figures AS (INSERT INTO pr_alert_figures ({}) SELECT * FROM unnest({}))"
    " INSERT INTO pr_alerts ({}) SELECT u.*, 'pending', 0, u.created_at, u.created_at"
    " FROM unnest({}) AS u ({})"
).format(
    _names(FIGURE_COLUMNS),
    _unnest(FIGURE_COLUMNS),
    _names(_WRITTEN),
    _unnest(_ALERT_NAMES),
    _names(_ALERT_NAMES),
)


def _figures(alerts: Sequence[AlertValues]) -> list[tuple[Any, ...]]:
    """The figures rows of the alerts: one per (cause position, subject), in first-seen order."""
    seen: dict[int, AlertShared] = {}
    rows: dict[tuple[Any, Any], tuple[Any, ...]] = {}
    for alert in alerts:
        common = alert[-1]
        if id(common) in seen:
            continue
        seen[id(common)] = common
        row = tuple(common[i] for i in _FIGURE_AT)
        rows.setdefault((row[0], row[1]), row)
    return list(rows.values())


def record_rows(
    tx: Tx,
    alerts: Sequence[AlertValues],
    changed: Sequence[ConditionValues],
    fresh: Collection[Key] | None = None,
) -> None:
    """A batch's alerts (as values, their deliveries pending), their figures and changed
    conditions (`fresh`, when known: those of them that have no row yet; None: any may).

    On PostgreSQL, a batch of few alerts (the live path: a command's events) writes them all
    in one statement over arrays (one round trip); a larger one COPYs the alerts and their
    figures (text rows built here), UPDATEs the conditions that have a row and upserts the
    others, over arrays.
    """
    if tx.dialect != "postgres":
        _record_rows_sqlite(tx, alerts, changed)
        return
    states = [list(column) for column in zip(*changed, strict=True)] if changed else []
    if alerts and len(alerts) <= SMALL:
        figures = [list(column) for column in zip(*_figures(alerts), strict=True)]
        rows = [a[:-1] + tuple(a[-1][i] for i in _KEPT) for a in alerts]
        columns = [list(column) for column in zip(*rows, strict=True)]
        if changed:
            query = sql.SQL("WITH states AS ({}), {}").format(_UPSERT, _ALERTS)
            tx.execute(query, [*states, *figures, *columns])
        else:
            tx.execute(sql.SQL("WITH {}").format(_ALERTS), [*figures, *columns])
        return
    if alerts:
        alert_lines, figure_lines = _copy_lines(alerts)
        tx.copy_text(sql.Identifier("pr_alert_figures"), FIGURE_COLUMNS, figure_lines)
        tx.copy_text(sql.Identifier("pr_alerts"), _WRITTEN, alert_lines)
    if changed:
        _save_conditions(tx, changed, fresh)


class AlertStream:
    """A large batch's alerts sent to `pr_alerts` while the batch is still being evaluated
    (PostgreSQL): one COPY kept open on the batch's connection, fed a piece at a time, so
    that the server inserts the alerts (heap, keys, WAL) on its own core while this process
    evaluates the next events, instead of after them. Their figures are kept and COPYed at
    the end (`finish`), then `record_rows` writes the rest as before, all in the batch's
    transaction. A statement of the batch's own between two pieces `pause`s the COPY first
    (the next piece opens another)."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.open: CopyStream | None = None
        self.figure_lines: list[str] = []
        self.sent = 0

    def send(self, alerts: Sequence[AlertValues]) -> None:
        """COPY these alerts (whole events' alerts: a figures row per cause and subject)."""
        if not alerts:
            return
        alert_lines, figure_lines = _copy_lines(alerts)
        self.figure_lines.extend(figure_lines)
        if self.open is None:
            self.open = self.tx.copy_text_stream(sql.Identifier("pr_alerts"), _WRITTEN)
        self.open.write(alert_lines)
        self.sent += len(alerts)

    def pause(self) -> None:
        """End the open COPY, if any: the connection is free for another statement."""
        if self.open is not None:
            stream, self.open = self.open, None
            stream.close()

    def finish(self) -> None:
        """End the COPY and write the figures of every alert sent."""
        self.pause()
        self.tx.copy_text(sql.Identifier("pr_alert_figures"), FIGURE_COLUMNS, self.figure_lines)
        self.figure_lines = []

    def abort(self, error: BaseException) -> None:
        """Fail the open COPY (the batch's transaction is rolled back)."""
        if self.open is not None:
            stream, self.open = self.open, None
            stream.close(error)


def _save_conditions(
    tx: Tx, changed: Sequence[ConditionValues], fresh: Collection[Key] | None
) -> None:
    """UPDATE the changed conditions known to have a row, upsert the others; should a row
    have gone (fewer rows updated than sent), upsert those too: the same result."""
    known = [] if fresh is None else [c for c in changed if (c[0], c[1]) not in fresh]
    new = changed if fresh is None else [c for c in changed if (c[0], c[1]) in fresh]
    if known:
        if tx.execute(_UPDATE, _array_literals(known)) != len(known):
            new = [*new, *known]
            fresh = None  # some of them are not new: upsert them all
    if fresh is not None and len(new) > SMALL and _copy_fresh(tx, new):
        return
    if new:
        tx.execute(_UPSERT, _array_literals(new))


def _copy_fresh(tx: Tx, new: Sequence[ConditionValues]) -> bool:
    """COPY conditions known to have no row (the first evaluation of many subjects: a
    cold catch-up inserts one per subscription and project it covers), cheaper for the
    server than the upsert's insertion with its conflict check; should one have a row after
    all, the COPY is undone (a savepoint) and False returned: the caller upserts them."""
    lines = [
        f"{copy_text(sid)}\t{copy_text(subject)}\t{'t' if active else 'f'}\t"
        + (_NULL if value is None else copy_text(value))
        for sid, subject, active, value in new
    ]
    tx.execute("SAVEPOINT fresh_conditions")
    try:
        tx.copy_text(sql.Identifier("pr_alert_state"), _CONDITION_COLUMNS, lines)
    except psycopg.errors.UniqueViolation:
        tx.execute("ROLLBACK TO SAVEPOINT fresh_conditions")
        return False
    tx.execute("RELEASE SAVEPOINT fresh_conditions")
    return True


_CONDITION_COLUMNS = ("subscription_id", "subject", "active", "value")


def _array_literals(changed: Sequence[ConditionValues]) -> list[str]:
    """The conditions' columns as PostgreSQL array literals (text, cast by the statement):
    built by joins, not by psycopg's list dumper, element by element in Python (about 10 %
    of the worker's time on the bench's batches)."""
    sids, subjects, actives, values = zip(*changed, strict=True)
    return [
        _text_array(sids),
        _text_array(subjects),
        "{" + ",".join("t" if a else "f" for a in actives) + "}",
        _text_array(values),
    ]


def _text_array(values: Sequence[str | None]) -> str:
    """A text[] literal: each element double-quoted (backslash and quote escaped), NULL."""
    return (
        "{"
        + ",".join(
            "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for v in values
        )
        + "}"
    )


def _record_rows_sqlite(
    tx: Tx, alerts: Sequence[AlertValues], changed: Sequence[ConditionValues]
) -> None:
    if alerts:
        tx.copy_rows(sql.Identifier("pr_alert_figures"), FIGURE_COLUMNS, _figures(alerts))
        rows = [
            (
                *a[:-1],
                *(a[-1][i] for i in _KEPT),
                "pending",
                0,
                a[-1][_CREATED_AT],
                a[-1][_CREATED_AT],
            )
            for a in alerts
        ]
        tx.copy_rows(sql.Identifier("pr_alerts"), _WRITTEN, rows)
    if changed:
        tx.executemany(
            "INSERT INTO pr_alert_state (subscription_id, subject, active, value)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (subscription_id, subject)"
            " DO UPDATE SET active = excluded.active, value = excluded.value",
            changed,
        )


_NULL = "\\N"


def copy_text(value: str) -> str:
    """`value` as a field of COPY's text format (backslash, tab, newline, return escaped)."""
    if "\\" in value or not value.isprintable():
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def _copy_lines(alerts: Sequence[AlertValues]) -> tuple[list[str], list[str]]:
    """The COPY text lines of the alerts (columns _WRITTEN: pending, no attempt yet) and of
    their figures (one per cause position and subject): every text field through
    `copy_text`, what alerts share formatted once."""
    shared: dict[int, str] = {}  # id(shared values) -> their text, then the delivery's
    figured: set[tuple[int, str]] = set()
    # the text of the values alerts repeat (subscription ids, kinds, metrics, values)
    texts: dict[str | None, str] = {None: _NULL}
    alert_lines: list[str] = []
    figure_lines: list[str] = []
    append = alert_lines.append
    for id_, sid, kind, metric, before, after, common in alerts:
        tail = shared.get(id(common))
        if tail is None:
            tail = shared[id(common)] = _shared_text(common)
            key = (common[_FIGURE_AT[0]], common[_FIGURE_AT[1]])
            if key not in figured:
                figured.add(key)
                figure_lines.append(_fields(tuple(common[i] for i in _FIGURE_AT)))
        owner = texts.get(sid)
        if owner is None:
            owner = texts[sid] = copy_text(sid)
        what = texts.get(kind)
        if what is None:
            what = texts[kind] = copy_text(kind)
        name = texts.get(metric)
        if name is None:
            name = texts[metric] = copy_text(metric)
        b = texts.get(before)
        if b is None:
            b = texts[before] = copy_text(before or "")
        a = texts.get(after)
        if a is None:
            a = texts[after] = copy_text(after or "")
        append(f"{copy_text(id_)}\t{owner}\t{what}\t{name}\t{b}\t{a}\t{tail}")
    return alert_lines, figure_lines


def _fields(values: Sequence[Any]) -> str:
    """Values as one line of COPY's text format."""
    fields_ = []
    for value in values:
        if value is None:
            fields_.append(_NULL)
        elif isinstance(value, datetime):
            fields_.append(value.isoformat())
        elif isinstance(value, int):
            fields_.append(str(value))
        else:
            fields_.append(copy_text(str(value)))
    return "\t".join(fields_)


def _shared_text(common: AlertShared) -> str:
    """The alert's subject and cause, then its delivery: pending, no attempt yet, due at once."""
    at = common[_CREATED_AT].isoformat()
    return f"{_fields(tuple(common[i] for i in _KEPT))}\tpending\t0\t{at}\t{at}"
