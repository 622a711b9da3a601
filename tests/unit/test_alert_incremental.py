"""The incremental alerts projector raises exactly the alerts of the refolding reference.

Random histories (costs, schedules, ratings, withheld figures, backdated corrections,
projects leaving the portfolio or changing ministry) under many subscriptions that are
created, changed and deleted along the way, caught up in random batches by the warm
projector (and at times by another consumer, which it must notice); then the same log
replayed by the reference (`tests/alert_reference.py`, the projector as it was) from empty
tables: the alert rows and condition states are identical.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from domain.application import Portfolio, Provenance
from domain.errors import DomainError
from domain.subscription import make_channel, make_rule
from domain.values import RATINGS
from projections import alert_store, alerts
from projections.alert_queries import ALERT_FIELDS, ALERTS_FROM
from projections.catchup import run_projection
from projections.db import Database
from projections.registry import catch_up
from service.bootstrap import bootstrap
from service.config import Settings
from tests.alert_reference import ReferenceAlertsProjector
from tests.conftest import PG_AUDIT_KEY as PG_KEY
from tests.histories import BASE, TODAY, Step, apply_step, register_projects, step

RULES: list[dict[str, Any]] = [
    {"metric": "budget_drift_pct", "comparator": ">", "threshold": "10"},
    {"metric": "budget_drift_pct", "comparator": ">", "threshold": "50", "clear_threshold": "0"},
    {"metric": "budget_drift_pct", "comparator": "<=", "threshold": "-20"},
    {"metric": "schedule_drift_pct", "comparator": ">=", "threshold": "10"},
    {"metric": "schedule_drift_pct", "comparator": ">", "threshold": "40", "clear_threshold": "5"},
    {"metric": "current_cost", "comparator": ">", "threshold": "1500000"},
    {"metric": "current_cost", "comparator": ">", "threshold": "3000000", "clear_threshold": "1e6"},
    {"metric": "current_cost", "comparator": "<", "threshold": "500000"},
    {"metric": "rating_at_or_worse", "threshold": "Amber"},
    {"metric": "rating_at_or_worse", "threshold": "Red", "clear_threshold": "Amber/Green"},
]
PORTFOLIO_RULES: list[dict[str, Any]] = [
    {"metric": "portfolio_total_cost_engaged", "comparator": ">", "threshold": "5000000"},
    {"metric": "portfolio_total_cost_engaged", "comparator": "<", "threshold": "3000000"},
    {"metric": "portfolio_mean_budget_drift_pct", "comparator": ">", "threshold": "5"},
    {
        "metric": "portfolio_mean_budget_drift_pct",
        "comparator": ">",
        "threshold": "30",
        "clear_threshold": "10",
    },
]
MINISTRIES = ["MJ", "MEF", "MI", " mj"]
CHANNEL = make_channel("webhook", url="http://127.0.0.1:9/hook", email=None, secret=None)


@dataclass(frozen=True)
class Subscribe:
    rule: int  # index into RULES + PORTFOLIO_RULES
    scope: int  # 0 every project, 1..4 a ministry, 5..8 a project
    catch_up: int


@dataclass(frozen=True)
class Change:
    which: int
    rule: int
    scope: int
    catch_up: int


@dataclass(frozen=True)
class Delete:
    which: int
    catch_up: int


@dataclass(frozen=True)
class Move:
    project: int
    ministry: int
    day: int
    catch_up: int


batches = st.sampled_from([0, 0, 1, 2, 7, 1000])
rule_ix = st.integers(min_value=0, max_value=len(RULES) + len(PORTFOLIO_RULES) - 1)
scope_ix = st.integers(min_value=0, max_value=8)
actions = st.one_of(
    step,
    step,
    step,
    st.builds(Subscribe, rule_ix, scope_ix, batches),
    st.builds(Change, st.integers(0, 100), rule_ix, scope_ix, batches),
    st.builds(Delete, st.integers(0, 100), batches),
    st.builds(Move, st.integers(0, 3), st.integers(0, 3), st.integers(0, 1500), batches),
)


def rule_for(rule: int, scope: int, ids: list[Any]) -> Any:
    """A checked rule from the tables above, on every project, a ministry or one project."""
    if rule >= len(RULES):
        return make_rule(**PORTFOLIO_RULES[rule - len(RULES)], scope="portfolio")
    if scope == 0:
        return make_rule(**RULES[rule], scope="portfolio")
    if scope <= 4:
        return make_rule(**RULES[rule], scope="ministry", scope_value=MINISTRIES[scope - 1])
    return make_rule(**RULES[rule], scope="project", scope_value=str(ids[scope - 5]))


def act(portfolio: Portfolio, ids: list[Any], programme: Any, subs: list[Any], a: Any) -> None:
    """Apply one action of a history; a refusal of the domain records nothing."""
    try:
        match a:
            case Subscribe():
                rule = rule_for(a.rule, a.scope, ids)
                created = portfolio.create_subscription(
                    owner="o", rule=rule, channel=CHANNEL, actor="t"
                )
                subs.append(created.id)
            case Change() if subs:
                sid = subs[a.which % len(subs)]
                portfolio.change_subscription(sid, actor="t", rule=rule_for(a.rule, a.scope, ids))
            case Delete() if subs:
                portfolio.delete_subscription(subs.pop(a.which % len(subs)), actor="t")
            case Move():
                prov = Provenance(BASE + timedelta(days=a.day), "tester", "test")
                changes = {"ministry_code": MINISTRIES[a.ministry].strip()}
                portfolio.revise_details(ids[a.project], changes, provenance=prov)
            case Change() | Delete():
                pass
            case _:
                apply_step(portfolio, ids, programme, a)
    except DomainError:
        pass


def snapshot(db: Database) -> tuple[list[tuple[Any, ...]], ...]:
    """The alert rows (but their wall-clock time), the condition states, the outbox and the
    figures (once per event and subject)."""
    with db.transaction(write=False) as tx:
        query = sql.SQL("SELECT {} FROM {} ORDER BY a.id").format(ALERT_FIELDS, ALERTS_FROM)
        alert_rows = tx.fetch(query)
        figures = tx.fetch("SELECT * FROM pr_alert_figures ORDER BY cause_position, subject")
        states = tx.fetch("SELECT * FROM pr_alert_state ORDER BY subscription_id, subject")
        outbox = tx.fetch(
            "SELECT CAST(id AS text) AS id, subscription_id, status, attempts FROM pr_alerts"
            " WHERE first_at = created_at AND next_attempt_at = created_at ORDER BY id"
        )
    return (
        [tuple(v for k, v in r.items() if k != "created_at") for r in alert_rows],
        [tuple(r.values()) for r in states],
        [tuple(r.values()) for r in outbox],
        [tuple(r.values()) for r in figures],
    )


def load_for(portfolio: Portfolio) -> Any:
    def load(project_id: Any, lte: int) -> list[Any]:
        return list(portfolio.events.get(project_id, lte=lte)) if lte > 0 else []

    return load


def fresh(portfolio: Portfolio) -> alerts.AlertsProjector:
    """An incremental projector other than the process's warm one (another consumer)."""
    return alerts.AlertsProjector(portfolio.mapper, load_for(portfolio))


def replay_with_reference(db: Database, portfolio: Portfolio) -> None:
    """Empty the alert tables and replay the whole log through the reference projector."""
    with db.transaction() as tx:
        for table in (
            "pr_alerts",
            "pr_alert_figures",
            "pr_alert_state",
            "pr_alert_projects",
        ):
            tx.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
        tx.execute("DELETE FROM pr_alert_subscriptions")
        tx.execute("UPDATE pr_tracking SET position = 0 WHERE name = %s", (alerts.NAME,))
    run_projection(
        db,
        portfolio,
        alerts.NAME,
        lambda: ReferenceAlertsProjector(portfolio.mapper, load_for(portfolio)),
        batch_size=5,
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    start=st.lists(st.tuples(rule_ix, scope_ix), min_size=5, max_size=40),
    history=st.lists(actions, min_size=5, max_size=60),
)
def test_incremental_alerts_equal_the_refolding_reference(
    start: list[tuple[int, int]], history: list[Any]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'alerts.sqlite3'}"
        services = bootstrap(Settings(database_url=url), today=lambda: TODAY)
        services.after_commit = lambda position: None  # catch up only where the history says
        try:
            portfolio, db = services.portfolio, services.db
            ids = register_projects(portfolio)
            programme = _programme(portfolio)
            subs: list[Any] = []
            for rule, scope in start:
                act(portfolio, ids, programme, subs, Subscribe(rule, scope, 0))
            catch_up(db, portfolio, alerts.NAME, batch_size=3)
            for a in history:
                act(portfolio, ids, programme, subs, a)
                if a.catch_up == 2:  # another consumer moves the position past the warm one
                    run_projection(db, portfolio, alerts.NAME, lambda: fresh(portfolio))
                elif a.catch_up:
                    catch_up(db, portfolio, alerts.NAME, batch_size=a.catch_up)
            catch_up(db, portfolio, alerts.NAME, batch_size=4)
            incremental = snapshot(db)
            replay_with_reference(db, portfolio)
            assert snapshot(db) == incremental
        finally:
            services.close()


def test_a_warm_projector_notices_another_consumer_moved_the_position() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'alerts.sqlite3'}"
        services = bootstrap(Settings(database_url=url), today=lambda: TODAY)
        services.after_commit = lambda position: None
        try:
            portfolio, db = services.portfolio, services.db
            ids = register_projects(portfolio)
            catch_up(db, portfolio, alerts.NAME)  # the process's projector is warm
            rule = make_rule(
                metric="current_cost", comparator=">", threshold="9e6", scope="portfolio"
            )
            portfolio.create_subscription(owner="o", rule=rule, channel=CHANNEL, actor="t")
            run_projection(db, portfolio, alerts.NAME, lambda: fresh(portfolio))  # another one
            prov = Provenance(BASE + timedelta(days=10), "tester", "test")
            portfolio.reestimate_cost(ids[0], Decimal("1e7"), provenance=prov)
            catch_up(db, portfolio, alerts.NAME)
            with db.transaction(write=False) as tx:
                raised = tx.fetch("SELECT subject, kind, value_after FROM pr_alerts")
            assert raised == [{"subject": str(ids[0]), "kind": "raised", "value_after": "1E+7"}]
        finally:
            services.close()


def _programme(portfolio: Portfolio) -> Any:
    """The funding programme the histories' steps award from."""
    provenance = Provenance(BASE, "tester", "t")
    return portfolio.create_programme(
        name="FTAP", envelope=Decimal("1e9"), provenance=provenance
    ).id


def _count_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every piece of alerts streamed (`AlertStream.send`), as they are sent."""
    sent: list[int] = []
    send = alert_store.AlertStream.send

    def counted_send(self: alert_store.AlertStream, values: Any) -> None:
        sent.append(len(values))
        send(self, values)

    monkeypatch.setattr(alert_store.AlertStream, "send", counted_send)
    return sent


def _history(seed: int) -> list[Any]:
    """A fixed random history: subscriptions and steps, caught up in varied batches."""
    rng = random.Random(seed)
    found: list[Any] = [Subscribe(r, 0, 0) for r in range(len(RULES) + len(PORTFOLIO_RULES))]
    found += [Subscribe(r, 1 + r % 8, 0) for r in range(len(RULES))]
    for _ in range(80):
        if rng.random() < 0.15:
            found.append(Subscribe(rng.randrange(len(RULES) + 4), rng.randrange(9), 0))
        else:
            found.append(_step(rng))
    return found


def _step(rng: random.Random) -> Step:
    kind = rng.choice(["cost", "cost", "schedule", "status", "withhold", "disclose", "rejoin"])
    args = (Decimal(rng.randrange(1, 500_000)) * 10, "", rng.choice(RATINGS), False)
    return Step(rng.randrange(4), kind, rng.randrange(1500), args, rng.choice([0, 1, 7]))


def _normalised(db: Database, names: dict[str, str]) -> tuple[list[tuple[Any, ...]], ...]:
    """`snapshot` with the store's ids named (`names`), an alert id as its subscription,
    subject and cause, booleans as booleans (SQLite gives integers), sorted."""

    def name(value: Any) -> Any:
        return names.get(value, value) if isinstance(value, str) else value

    alert_rows, states, outbox, figures = snapshot(db)
    by_id = {r[0]: (name(r[1]), name(r[2]), r[9]) for r in alert_rows}
    return (
        sorted((by_id[r[0]], *map(name, r[1:])) for r in alert_rows),
        sorted((name(r[0]), name(r[1]), bool(r[2]), r[3]) for r in states),
        sorted((by_id[r[0]], name(r[1]), *r[2:]) for r in outbox),
        sorted((r[0], name(r[1]), *r[2:]) for r in figures),
    )


@pytest.mark.parametrize(
    ("small", "stream"),
    [(alert_store.SMALL, None), (0, None), (alert_store.SMALL, (1, 1)), (0, (2, 3))],
)
def test_postgres_records_the_same_alerts_as_sqlite(
    pg_url: str,
    pg_schema: str,
    small: int,
    stream: tuple[int, int] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The PostgreSQL writer (one statement over arrays for a few alerts; with `small` 0,
    always COPY text rows; with `stream` (least events, chunk), the alerts COPYed while the
    batch is evaluated, paused for the subscriptions' statements) stores exactly what the
    SQLite one does, a project name with a tab, a newline and backslashes included."""
    monkeypatch.setattr(alert_store, "SMALL", small)
    if stream is not None:
        monkeypatch.setattr(alerts, "STREAM_MIN_EVENTS", stream[0])
        monkeypatch.setattr(alerts, "STREAM_CHUNK", stream[1])
    else:
        monkeypatch.setattr(alerts, "STREAM_MIN_EVENTS", 10**9)
    sent = _count_sends(monkeypatch)  # the alerts of each piece streamed, on PostgreSQL
    paused: list[bool] = []  # whether each pause ended an open COPY
    pause = alert_store.AlertStream.pause

    def counted_pause(self: alert_store.AlertStream) -> None:
        paused.append(self.open is not None)
        pause(self)

    monkeypatch.setattr(alert_store.AlertStream, "pause", counted_pause)
    snapshots = []
    with tempfile.TemporaryDirectory() as tmp:
        for settings_ in (
            Settings(database_url=f"sqlite:///{Path(tmp) / 'alerts.sqlite3'}"),
            Settings(database_url=pg_url, database_schema=pg_schema, audit_signing_key=PG_KEY),
        ):
            services = bootstrap(settings_, today=lambda: TODAY)
            services.after_commit = lambda position: None
            try:
                portfolio, db = services.portfolio, services.db
                ids = register_projects(portfolio)
                portfolio.revise_details(
                    ids[0],
                    {"name": 'Tab\there, new\nline, back\\slash \\N "q"'},
                    provenance=Provenance(BASE, "tester", "test"),
                )
                programme = _programme(portfolio)
                subs: list[Any] = []
                for a in _history(3):
                    act(portfolio, ids, programme, subs, a)
                    if a.catch_up:
                        catch_up(db, portfolio, alerts.NAME, batch_size=a.catch_up)
                catch_up(db, portfolio, alerts.NAME, batch_size=5)
                names = {str(p): f"project {i}" for i, p in enumerate(ids)}
                names |= {str(sid): f"subscription {i}" for i, sid in enumerate(subs)}
                snapshots.append(_normalised(db, names))
            finally:
                services.close()
    sqlite, postgres = snapshots
    assert len(sqlite[0]) > 20  # alerts were raised
    if stream is not None:  # streamed in pieces, paused for a statement at least once
        assert sent and sum(sent) <= len(postgres[0])
        assert any(paused)
    else:
        assert not sent
    assert any("\\t" in row[7] for row in sqlite[0])  # the name's tab, in the figures' JSON
    assert postgres == sqlite


@pytest.mark.parametrize("url", ["sqlite", "postgres"])
@pytest.mark.parametrize("small", [alert_store.SMALL, 0])
def test_changed_conditions_are_stored_whether_or_not_they_are_said_to_be_fresh(
    url: str,
    pg_url: str,
    pg_schema: str,
    tmp_path: Path,
    small: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A changed condition said to have a row is UPDATEd; one that has none after all is
    upserted; one said fresh that has a row is updated by the upsert (with `small` 0 on
    PostgreSQL, the fresh ones are COPYed first, that COPY undone when one has a row): the
    same table, text that means something in an array literal or in COPY included."""
    monkeypatch.setattr(alert_store, "SMALL", small)
    settings_ = (
        Settings(database_url=f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
        if url == "sqlite"
        else Settings(database_url=pg_url, database_schema=pg_schema, audit_signing_key=PG_KEY)
    )
    services = bootstrap(settings_, today=lambda: TODAY)
    try:
        expected: dict[tuple[str, str], tuple[bool, str | None]] = {}
        cases: list[tuple[list[alert_store.ConditionValues], set[tuple[str, str]]]] = [
            ([("s1", "p1", True, "5"), ("s2", "p1", False, None)], set()),  # no row yet
            ([("s1", "p1", False, "3")], set()),  # has its row: updated
            ([("s1", "p1", True, "7"), ("s3", "p2", True, "1")], {("s1", "p1")}),
            ([("s2", "p1", True, "2"), ("s3", "p2", False, "0")], {("s4", "p9")}),
            # array syntax in the values: quotes, a backslash, braces, a comma, "NULL"
            ([("s5", 'p "q" \\ {x}, y', True, "NULL"), ("s6", "NULL", False, None)], set()),
            ([("s5", 'p "q" \\ {x}, y', False, '"1,2"'), ("s6", "NULL", True, "")], set()),
            # said fresh, and fresh: COPY's text escapes (tab, newline, backslash, \\N)
            (
                [("s7", "tab\there\nline \\ \\N", True, "v\t1"), ("s8", "p1", False, None)],
                {("s7", "tab\there\nline \\ \\N"), ("s8", "p1")},
            ),
        ]
        for changed, fresh in cases:
            with services.db.transaction() as tx:
                alert_store.record_rows(tx, [], changed, fresh=fresh)
            expected |= {(sid, subject): (active, value) for sid, subject, active, value in changed}
            with services.db.transaction(write=False) as tx:
                stored = {k: (r.active, r.value) for k, r in alert_store.conditions(tx).items()}
            assert stored == expected
    finally:
        services.close()


def test_several_streams_read_at_once_are_each_stream_up_to_its_version(
    pg_url: str, pg_schema: str
) -> None:
    """`select_streams` (the streams a batch's backdated events refold, one statement) gives
    what `select_events(lte=)` gives for each stream, and an empty list for a stream with
    nothing up to its version."""
    settings_ = Settings(database_url=pg_url, database_schema=pg_schema, audit_signing_key=PG_KEY)
    services = bootstrap(settings_, today=lambda: TODAY)
    try:
        portfolio = services.portfolio
        ids = register_projects(portfolio)
        programme = _programme(portfolio)
        rng = random.Random(7)
        for _ in range(12):
            apply_step(portfolio, ids, programme, _step(rng))
        recorder = portfolio.recorder
        wanted = {oid: rng.randint(1, 6) for oid in ids}
        wanted[ids[0]] = 0
        found = recorder.select_streams(wanted)  # type: ignore[attr-defined]
        assert set(found) == set(wanted)
        for oid, lte in wanted.items():
            assert found[oid] == list(recorder.select_events(oid, lte=lte))
        assert any(len(events) > 1 for events in found.values())
    finally:
        services.close()


def test_a_batch_failing_while_its_alerts_stream_records_none_of_them(
    pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose evaluation fails after some of its alerts were COPYed (the stream)
    leaves no alert, condition or position behind; caught up again, it records them all,
    as a batch that never failed does."""
    monkeypatch.setattr(alerts, "STREAM_MIN_EVENTS", 1)
    monkeypatch.setattr(alerts, "STREAM_CHUNK", 1)
    sent = _count_sends(monkeypatch)
    settings_ = Settings(database_url=pg_url, database_schema=pg_schema, audit_signing_key=PG_KEY)
    services = bootstrap(settings_, today=lambda: TODAY)
    services.after_commit = lambda position: None
    try:
        portfolio, db = services.portfolio, services.db
        ids = register_projects(portfolio)
        programme = _programme(portfolio)
        subs: list[Any] = []
        for a in _history(3):
            act(portfolio, ids, programme, subs, a)
        project = alerts.AlertsProjector._project
        calls = 0

        def failing(self: alerts.AlertsProjector, n: Any, event: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 30:
                raise RuntimeError("the worker fails in the middle of the batch")
            project(self, n, event)

        monkeypatch.setattr(alerts.AlertsProjector, "_project", failing)
        with pytest.raises(RuntimeError, match="middle of the batch"):
            catch_up(db, portfolio, alerts.NAME, batch_size=10_000)
        assert sum(sent) > 0  # alerts had been sent before the failure
        with db.transaction(write=False) as tx:
            assert tx.scalar("SELECT count(*) FROM pr_alerts") == 0
            assert tx.scalar("SELECT count(*) FROM pr_alert_figures") == 0
            assert tx.scalar("SELECT count(*) FROM pr_alert_state") == 0
        monkeypatch.setattr(alerts.AlertsProjector, "_project", project)
        catch_up(db, portfolio, alerts.NAME, batch_size=10_000)
        failed_then_caught_up = snapshot(db)
        # the same history caught up again from nothing, without a failure
        with db.transaction() as tx:
            for table in (
                "pr_alerts",
                "pr_alert_figures",
                "pr_alert_state",
                "pr_alert_projects",
                "pr_alert_subscriptions",
            ):
                tx.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
            tx.execute("UPDATE pr_tracking SET position = 0 WHERE name = %s", [alerts.NAME])
        catch_up(db, portfolio, alerts.NAME, batch_size=10_000)
        assert len(failed_then_caught_up[0]) > 20
        never_failed = snapshot(db)
        for kept in (0, 1, 3):  # the alerts, the conditions, the figures
            assert sorted(never_failed[kept]) == sorted(failed_then_caught_up[kept])
    finally:
        services.close()
