"""The daily digest is a pure function of the day's alerts and the digest subscriptions."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from workers.digest import build_digests, previous_day

DAY = date(2024, 6, 30)


def sub(sid: str, owner: str = "tok-a", channel: str = "webhook", target: str = "https://h.example/x",
        created: str = "2024-06-01T00:00:00+00:00") -> dict[str, Any]:  # fmt: skip
    return {"id": sid, "owner": owner, "channel": channel, "target": target,
            "secret": f"secret-of-{sid}", "created_at": created}  # fmt: skip


def alert(aid: str, sid: str, at: str, kind: str = "raised") -> dict[str, Any]:
    return {"id": aid, "subscription_id": sid, "subject": "p1", "kind": kind,
            "metric": "budget_drift_pct", "value_before": "0.00", "value_after": "30.00",
            "figures_after": json.dumps({"name": "SI paie"}), "created_at": at}  # fmt: skip


def test_the_previous_utc_day_is_summed_up() -> None:
    assert previous_day(datetime(2024, 7, 1, 7, 0, tzinfo=UTC)) == DAY
    assert previous_day(datetime(2024, 7, 1, 0, 0, tzinfo=UTC)) == DAY


def test_one_digest_per_channel_with_the_days_alerts_only() -> None:
    subs = [
        sub("s1"),
        sub("s2", created="2024-06-02T00:00:00+00:00"),
        sub("s3", channel="email", target="press@example.org"),
        sub("s4", owner="tok-b"),
    ]
    alerts = [
        alert("a1", "s1", "2024-06-30T08:00:00+00:00"),
        alert("a2", "s2", "2024-06-30T23:59:59+00:00", kind="cleared"),
        alert("a0", "s1", "2024-06-29T23:59:59+00:00"),  # the day before
        alert("a3", "s1", "2024-07-01T00:00:00+00:00"),  # the day after
        alert("a4", "s4", "2024-06-30T10:00:00+00:00"),  # another owner
        alert("a5", "s9", "2024-06-30T10:00:00+00:00"),  # not a digest subscription
    ]
    [digest] = build_digests("tok-a", DAY, subs, alerts)
    assert (digest.channel, digest.target, digest.secret) == (
        "webhook", "https://h.example/x", "secret-of-s1")  # fmt: skip
    assert [a["id"] for a in digest.body["alerts"]] == ["a1", "a2"]
    assert digest.body["subscriptions"] == ["s1", "s2"]
    assert (digest.body["raised"], digest.body["cleared"], digest.body["type"]) == (
        1, 1, "alert.digest")  # fmt: skip
    assert "08:00 UTC raised budget_drift_pct for SI paie: 0.00 -> 30.00" in digest.text
    assert "2 alert(s), 1 raised, 1 cleared" in digest.subject and "<li>" in digest.html
    again = build_digests("tok-a", DAY, list(reversed(subs)), list(reversed(alerts)))
    assert again == [digest]  # deterministic: the same id and body, whatever the order


def test_a_day_without_alerts_gives_no_digest() -> None:
    assert build_digests("tok-a", DAY, [sub("s1")], []) == []
    assert build_digests("tok-a", DAY, [], [alert("a1", "s1", "2024-06-30T08:00:00+00:00")]) == []
