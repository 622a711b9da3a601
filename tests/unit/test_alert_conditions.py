"""Alert evaluation as a pure function: crossings, hysteresis, no double alert, scope."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from domain.subscription import Rule, make_rule
from projections.alert_conditions import (
    PORTFOLIO,
    AlertRow,
    Cause,
    Check,
    ConditionRow,
    evaluate,
    project_checks,
    rule_checks,
)
from projections.alert_values import Facts

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
P1, P2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
DRIFT = {"metric": "budget_drift_pct", "comparator": ">", "threshold": "20"}


def facts(drift: str | None, ministry: str = "MINARM", *, followed: bool = True) -> Facts:
    return {
        "name": "SI RH",
        "ministry_code": ministry,
        "in_portfolio": followed,
        "budget_drift_pct": drift,
        "schedule_drift_pct": None,
        "current_cost": "120",
        "rating": "Amber",
        "engaged": "120",
        "drift": drift,
    }


def run(rule: Rule, values: list[str | None]) -> list[AlertRow]:
    """Feed values one event after another; return the alerts, carrying the condition along."""
    known: ConditionRow | None = None
    alerts = []
    for position, raw in enumerate(values, start=1):
        value = None if raw is None else Decimal(raw)
        check = Check("s1", rule, P1, value, facts(raw), facts(raw))
        cause = Cause(position, P1, position, "CostReestimated")
        transition = evaluate(check, known, cause, NOW)
        known = transition.condition or known
        if transition.alert is not None:
            alerts.append(transition.alert)
    return alerts


def test_a_crossing_raises_one_alert_naming_what_changed_and_why() -> None:
    [alert] = run(make_rule(scope="portfolio", **DRIFT), ["10", "25"])
    assert (alert.kind, alert.metric, alert.value_before, alert.value_after) == (
        "raised",
        "budget_drift_pct",
        "10",
        "25",
    )
    assert (alert.cause_position, alert.cause_stream, alert.cause_type) == (
        2,
        P1,
        "CostReestimated",
    )
    assert json.loads(alert.figures_after)["budget_drift_pct"] == "25"
    assert alert.created_at == NOW


def test_a_value_that_stays_over_raises_no_second_alert() -> None:
    alerts = run(make_rule(scope="portfolio", **DRIFT), ["25", "30", "31", None, "40"])
    assert [a.kind for a in alerts] == ["raised"]


def test_hysteresis_clears_only_past_the_clear_threshold() -> None:
    rule = make_rule(scope="portfolio", clear_threshold="10", **DRIFT)
    alerts = run(rule, ["25", "15", "11", "9", "15", "21"])
    assert [(a.kind, a.value_after) for a in alerts] == [
        ("raised", "25"),
        ("cleared", "9"),
        ("raised", "21"),
    ]


def test_an_unchanged_condition_is_not_written_again() -> None:
    rule = make_rule(scope="portfolio", **DRIFT)
    known = ConditionRow("s1", P1, True, "25")
    same = evaluate(Check("s1", rule, P1, Decimal("25")), known, Cause(3, P1, 3, "X"), NOW)
    unknown = evaluate(Check("s1", rule, P1, None), known, Cause(4, P1, 4, "X"), NOW)
    assert same.condition is None and same.alert is None
    assert unknown.condition is None and unknown.alert is None


def test_one_alert_id_per_subscription_subject_and_cause() -> None:
    rule = make_rule(scope="portfolio", **DRIFT)
    check = Check("s1", rule, P1, Decimal("25"))
    first = evaluate(check, None, Cause(7, P1, 2, "X"), NOW).alert
    again = evaluate(check, None, Cause(7, P1, 2, "X"), NOW).alert
    later = evaluate(check, None, Cause(8, P1, 3, "X"), NOW).alert
    assert first is not None and again is not None and later is not None
    assert first.id == again.id != later.id


def test_a_ministry_rule_checks_only_that_ministrys_projects() -> None:
    rule = make_rule(scope="ministry", scope_value="MINARM", **DRIFT)
    projects = {P1: facts("30"), P2: facts("30", "MININT")}
    assert [c.subject for c in rule_checks("s1", rule, projects)] == [P1]
    assert project_checks({"s1": rule}, projects, P2, facts("40", "MININT")) == []


def test_a_project_that_leaves_the_scope_is_checked_once_more() -> None:
    rule = make_rule(scope="ministry", scope_value="MINARM", **DRIFT)
    projects = {P1: facts("30")}
    [check] = project_checks({"s1": rule}, projects, P1, facts("30", "MININT"))
    assert check.subject == P1 and check.before == facts("30")


def test_a_project_rule_checks_its_one_project() -> None:
    rule = make_rule(scope="project", scope_value=P2, **DRIFT)
    projects = {P1: facts("30"), P2: facts("5")}
    assert [c.subject for c in rule_checks("s1", rule, projects)] == [P2]
    assert project_checks({"s1": rule}, projects, P1, facts("50")) == []


def test_a_portfolio_rule_is_checked_only_when_the_portfolio_value_moves() -> None:
    rule = make_rule(
        metric="portfolio_mean_budget_drift_pct", comparator=">", threshold="20", scope="portfolio"
    )
    projects = {P1: facts("30"), P2: facts("10")}
    [check] = rule_checks("s1", rule, projects)
    assert (check.subject, check.value) == (PORTFOLIO, Decimal("20.00"))
    [moved] = project_checks({"s1": rule}, projects, P2, facts("20"))
    assert moved.value == Decimal("25.00")
    unfollowed = facts("90", followed=False)
    assert (
        project_checks(
            {"s1": rule}, {**projects, "p3": unfollowed}, "p3", facts("95", followed=False)
        )
        == []
    )


def test_an_alert_id_is_a_uuid8_of_its_cause_position_then_a_hash_of_the_rest() -> None:
    import hashlib
    import uuid

    from projections.alert_conditions import ALERT_NS, alert_id

    cases = [
        ("s1", "portfolio", 1),
        (str(uuid.uuid4()), str(uuid.uuid4()), 1_234_567),
        ("é", "programme:x", 0),
        ("s1", "portfolio", (1 << 48) - 1),
        *((str(uuid.uuid4()), str(uuid.uuid4()), n * 7919) for n in range(500)),
    ]
    for sid, subject, position in cases:
        digest = hashlib.sha1(ALERT_NS.bytes + f"{sid}:{subject}:{position}".encode()).digest()
        bits = int.from_bytes(digest, "big")  # 160 bits: 12 of them, 2 dropped, 62 more
        expected = uuid.UUID(
            int=position << 80
            | 0x8 << 76
            | (bits >> 148) << 64
            | 0b10 << 62
            | (bits >> 84) & ((1 << 62) - 1)
        )
        got = alert_id(sid, subject, position)
        assert got == str(expected)
        assert (expected.version, expected.variant) == (8, uuid.RFC_4122)
        assert alert_id(sid, subject, position) == got  # deterministic
    # ordered by the position, as uuid (PostgreSQL) and as text (SQLite)
    ids = [alert_id(sid, subject, position) for sid, subject, position in cases]
    assert sorted(ids) == sorted(ids, key=uuid.UUID)
    assert [uuid.UUID(i).int >> 80 for i in sorted(ids)] == sorted(c[2] for c in cases)
    assert len(set(ids)) == len(ids)
