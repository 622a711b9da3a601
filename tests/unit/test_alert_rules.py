"""Alert rules, hysteresis, webhook signatures and the retry schedule: pure functions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.errors import InvalidValue
from domain.subscription import make_channel, make_rule
from workers.delivery import (
    FIRST_DELAY,
    MAX_DELAY,
    RETRY_WINDOW,
    next_attempt_at,
    sign,
)

T0 = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)


def crossings(rule_kwargs: dict[str, str], values: list[str | None]) -> list[bool]:
    rule = make_rule(scope="portfolio", metric="budget_drift_pct", **rule_kwargs)
    active, flips = False, []
    for raw in values:
        new = rule.next_active(active, None if raw is None else Decimal(raw))
        if new != active:
            flips.append(new)
        active = new
    return flips


def test_a_value_that_stays_over_raises_once() -> None:
    assert crossings({"comparator": ">", "threshold": "20"}, ["30", *["31"] * 10]) == [True]


def test_hysteresis_clears_only_past_the_clear_threshold() -> None:
    values = ["25", "15", "21", "11", "19", "10.01", "10", "15", "19.99"]
    assert crossings({"comparator": ">", "threshold": "20", "clear_threshold": "10"}, values) == [
        True,
        False,
    ]


def test_the_clear_threshold_parameter_is_named_clear_threshold() -> None:
    rule = make_rule(
        metric="budget_drift_pct", comparator="<=", threshold="-5", clear_threshold="0",
        scope="portfolio",
    )  # fmt: skip
    assert rule.clear == Decimal(0)
    assert rule.next_active(False, Decimal("-5")) and rule.next_active(True, Decimal("-0.5"))
    assert not rule.next_active(True, Decimal("0.5"))


def test_an_unknown_value_keeps_the_state() -> None:
    assert crossings({"comparator": ">", "threshold": "20"}, ["30", None, None, "31"]) == [True]


def test_a_rating_rule_is_at_or_worse_than_a_level() -> None:
    rule = make_rule(metric="rating_at_or_worse", threshold="Amber", scope="portfolio")
    assert rule.comparator == ">=" and rule.as_dict()["threshold"] == "Amber"
    assert rule.next_active(False, Decimal(2)) and not rule.next_active(False, Decimal(1))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"comparator": ">", "threshold": "20", "clear_threshold": "21"}, "clear_threshold"),
        ({"comparator": "<", "threshold": "20", "clear_threshold": "19"}, "clear_threshold"),
        ({"comparator": "!=", "threshold": "20"}, "comparator"),
        ({"comparator": ">", "threshold": "NaN"}, "threshold"),
        ({"comparator": ">", "threshold": "20", "scope": "galaxy"}, "scope"),
        (
            {"metric": "portfolio_mean_budget_drift_pct", "comparator": ">", "threshold": "1",
             "scope": "ministry", "scope_value": "MINARM"},
            "scope",
        ),
    ],
)  # fmt: skip
def test_bad_rules_name_their_field(kwargs: dict[str, str], field: str) -> None:
    args = {"metric": "budget_drift_pct", "scope": "portfolio"} | kwargs
    with pytest.raises(InvalidValue) as refused:
        make_rule(**args)
    assert refused.value.field == field


def test_a_generated_secret_is_a_standard_webhooks_secret() -> None:
    channel = make_channel("webhook", url="https://example.org/h", email=None, secret=None)
    assert str(channel["secret"]).startswith("whsec_")


def test_the_signature_matches_the_standard_webhooks_test_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_backoff_is_exponential_with_full_jitter_up_to_a_cap() -> None:
    for attempt, ceiling in ((1, FIRST_DELAY), (2, FIRST_DELAY * 2), (4, FIRST_DELAY * 8)):
        assert next_attempt_at(attempt, T0, T0, lambda: 1.0) == T0 + ceiling
        assert next_attempt_at(attempt, T0, T0, lambda: 0.0) == T0
        assert next_attempt_at(attempt, T0, T0, lambda: 0.5) == T0 + ceiling / 2
    assert next_attempt_at(40, T0, T0, lambda: 1.0) == T0 + MAX_DELAY


@pytest.mark.parametrize("seed", range(5))
def test_the_retry_schedule_stays_within_24_hours_then_gives_up(seed: int) -> None:
    rng = random.Random(seed).random
    now, attempt, times = T0, 1, [T0]
    while (nxt := next_attempt_at(attempt, T0, now, rng)) is not None:
        assert now <= nxt <= T0 + RETRY_WINDOW
        assert nxt - now <= min(MAX_DELAY, FIRST_DELAY * 2 ** min(attempt - 1, 30))
        now, attempt = nxt, attempt + 1
        times.append(now)
    assert T0 + RETRY_WINDOW - now <= MAX_DELAY  # it gave up only near the end of the window
    assert len(times) > 24  # hourly at worst near the end: many attempts in a day
    assert times == sorted(times) and times[-1] - times[0] <= timedelta(hours=24)
