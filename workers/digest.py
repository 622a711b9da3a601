"""The daily digest: one message per subscriber and channel summing up yesterday's alerts.

A subscription with `digest: true` has its alerts (raised and cleared, each still delivered
on its own as it happens) summed up once a day, for the previous UTC day, by the Celery
beat task `panorama.send_alert_digests` (at DIGEST_HOUR_UTC). `build_digests` is pure;
`send_digests` claims (owner, day) in `alert_digests` before sending, so a digest is sent
at most once per subscriber and day, however often the task runs. A day without alerts
sends nothing. See docs/alerts.md.
"""

from __future__ import annotations

import html
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from domain.errors import InvalidValue
from projections import outbox
from projections.alert_conditions import PORTFOLIO
from projections.alert_queries import shown
from projections.db import Database, as_ts
from workers.delivery import TIMEOUT_S, sign
from workers.mail import send_message
from workers.webhook_policy import WebhookPolicy
from workers.webhook_post import Outcome, Sender, post_webhook

log = logging.getLogger(__name__)
DIGEST_NS = UUID("0b7d5a43-2c1e-4f4e-8b7a-5d3c9e1f2a60")


@dataclass(frozen=True)
class Digest:
    """One digest message: to one channel (webhook URL or e-mail address) of one owner."""

    id: str
    owner: str
    day: date
    channel: str
    target: str
    secret: str | None
    subject: str
    text: str
    html: str
    body: dict[str, Any]


def previous_day(now: datetime) -> date:
    """The UTC day a digest sent at `now` sums up."""
    return (now.astimezone(UTC) - timedelta(days=1)).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _line(alert: dict[str, Any]) -> dict[str, Any]:
    after = json.loads(alert["figures_after"] or "null") or {}
    subject = alert["subject"]
    created = as_ts(alert["created_at"])
    return {
        "id": alert["id"],
        "kind": alert["kind"],
        "subscription_id": alert["subscription_id"],
        "subject": subject,
        "name": "the portfolio" if subject == PORTFOLIO else after.get("name") or subject,
        "metric": alert["metric"],
        "value_before": shown(alert["metric"], alert["value_before"]),
        "value_after": shown(alert["metric"], alert["value_after"]),
        "created_at": None if created is None else created.isoformat(),
        "links": {"alert": f"/api/alerts/{alert['id']}"},
    }


def build_digests(
    owner: str, day: date, subscriptions: Sequence[dict[str, Any]], alerts: Sequence[dict[str, Any]]
) -> list[Digest]:
    """The digests of one owner for one day (pure): one per channel that had alerts.

    `subscriptions` are the owner's digest subscriptions (rows of pr_alert_subscriptions),
    `alerts` rows of pr_alerts; alerts of other subscriptions or other days are ignored.
    A webhook digest is signed with the secret of the channel's oldest subscription.
    """
    start, end = day_bounds(day)
    by_id = {s["id"]: s for s in subscriptions if s["owner"] == owner}
    channels: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for sub in sorted(by_id.values(), key=lambda s: (str(s["created_at"]), s["id"])):
        channels.setdefault((sub["channel"], sub["target"]), [])
    for alert in sorted(alerts, key=lambda a: (str(a["created_at"]), a["id"])):
        owning = by_id.get(alert["subscription_id"])
        created = as_ts(alert["created_at"])
        if owning is None or created is None or not start <= created < end:
            continue
        channels[(owning["channel"], owning["target"])].append(alert)
    digests = []
    for (channel, target), found in channels.items():
        if not found:
            continue
        subs = [s for s in by_id.values() if (s["channel"], s["target"]) == (channel, target)]
        oldest = min(subs, key=lambda s: (str(s["created_at"]), s["id"]))
        lines = [_line(a) for a in found]
        raised = sum(1 for a in lines if a["kind"] == "raised")
        digest_id = str(uuid.uuid5(DIGEST_NS, f"{owner}:{day.isoformat()}:{channel}:{target}"))
        subject = (
            f"[Panorama] {day.isoformat()}: {len(lines)} alert(s),"
            f" {raised} raised, {len(lines) - raised} cleared"
        )
        text_lines = [
            f"{(a['created_at'] or '')[11:16]} UTC {a['kind']} {a['metric']} for {a['name']}:"
            f" {a['value_before']} -> {a['value_after']} (alert {a['id']})"
            for a in lines
        ]
        text = f"Alerts of {day.isoformat()} (UTC)\n\n" + "\n".join(text_lines) + "\n"
        items = "".join(f"<li>{html.escape(line)}</li>" for line in text_lines)
        page = (
            f"<html><body><p>Alerts of {html.escape(day.isoformat())} (UTC)</p>"
            f"<ul>{items}</ul></body></html>"
        )
        body = {
            "id": digest_id,
            "type": "alert.digest",
            "day": day.isoformat(),
            "subscriptions": sorted(s["id"] for s in subs),
            "count": len(lines),
            "raised": raised,
            "cleared": len(lines) - raised,
            "alerts": lines,
        }
        digests.append(
            Digest(
                digest_id,
                owner,
                day,
                channel,
                target,
                oldest.get("secret"),
                subject,
                text,
                page,
                body,
            )
        )
    return digests


def _send(
    digest: Digest,
    now: datetime,
    send: Sender,
    policy: WebhookPolicy,
    smtp_url: str | None,
    timeout_s: float,
) -> Outcome:
    if digest.channel == "email":
        if not smtp_url:
            return Outcome(None, "SMTP_URL is not set: e-mail digests cannot be sent")
        error = send_message(
            smtp_url,
            digest.target,
            digest.subject,
            digest.text,
            digest.html,
            f"<{digest.id}@panorama>",
            timeout_s,
        )
        return Outcome(None, error)
    try:
        target = policy.admit(digest.target)
    except InvalidValue as error:
        return Outcome(None, error.message)
    body = json.dumps(digest.body, separators=(",", ":")).encode()
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "panorama-alerts/1",
        "webhook-id": digest.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(digest.secret or "", digest.id, timestamp, body),
    }
    return send(target, body, headers, timeout_s)


def send_digests(
    db: Database,
    *,
    now: datetime | None = None,
    send: Sender = post_webhook,
    policy: WebhookPolicy | None = None,
    smtp_url: str | None = None,
    timeout_s: float = TIMEOUT_S,
) -> dict[str, int]:
    """Send the previous UTC day's digests not sent yet; return {"sent": n, "failed": n}."""
    now = now or datetime.now(UTC)
    policy = policy or WebhookPolicy()
    day = previous_day(now)
    start, end = day_bounds(day)
    counts = {"sent": 0, "failed": 0}
    subs, alerts = outbox.digest_rows(db, start, end)
    for owner in sorted({s["owner"] for s in subs}):
        digests = build_digests(owner, day, subs, alerts)
        if not digests:
            continue
        if not outbox.claim_digest(db, owner, day.isoformat(), now):
            continue
        errors = []
        for digest in digests:
            outcome = _send(digest, now, send, policy, smtp_url, timeout_s)
            if outcome.ok:
                counts["sent"] += 1
            else:
                counts["failed"] += 1
                errors.append(f"{digest.channel}: {outcome.error or outcome.http_status}")
        if errors:
            log.warning("alert digest of %s for %s: %d failed", owner, day, len(errors))
        outbox.record_digest(
            db, owner, day.isoformat(), sent=len(digests) - len(errors), errors=errors
        )
    return counts
