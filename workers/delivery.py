"""Delivering alerts: signed webhooks, retried with backoff and full jitter, then dead.

Every alert's row is its outbox entry (written pending by the alerts projection; the
outbox's SQL is in `projections.outbox`). `deliver_due` claims the due rows,
leased for LEASE, so two workers or a beat tick that overlaps a task never send the same
attempt twice. The clock and the random source are injected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.errors import InvalidValue
from domain.subscription import rule_from_payload
from projections import outbox
from projections.alert_conditions import PORTFOLIO
from projections.alert_queries import shown
from projections.db import Database, as_ts
from workers.mail import send_email
from workers.webhook_policy import WebhookPolicy
from workers.webhook_post import Outcome, Sender, post_webhook

log = logging.getLogger(__name__)
RETRY_WINDOW = timedelta(hours=24)
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
LEASE = timedelta(seconds=120)
TIMEOUT_S = 5.0
Clock = Callable[[], datetime]
Rng = Callable[[], float]


def next_attempt_at(attempt: int, first_at: datetime, now: datetime, rng: Rng) -> datetime | None:
    """When to retry after failed attempt `attempt` (1-based); None: give up (dead letter).

    Exponential backoff with full jitter: a uniform delay in [0, min(MAX, FIRST * 2^(n-1))],
    for as long as the retry stays within RETRY_WINDOW of the first attempt.
    """
    ceiling = min(MAX_DELAY, FIRST_DELAY * 2 ** min(attempt - 1, 30))
    at = now + ceiling * min(max(rng(), 0.0), 1.0)
    return None if at > first_at + RETRY_WINDOW else at


def signing_key(secret: str) -> bytes:
    """A Standard Webhooks secret (whsec_ + base64) is its decoded bytes; else its UTF-8."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[6:], validate=True)
        except ValueError:
            pass
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: v1, base64 HMAC-SHA256 over id.timestamp.body."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def alert_body(alert: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of an alert's webhook."""
    subject = alert["subject"]
    after = json.loads(alert["figures_after"] or "null")
    project = None if subject == PORTFOLIO else {"id": subject, "name": (after or {}).get("name")}
    links = {
        "alert": f"/api/alerts/{alert['id']}",
        "subscription": f"/api/subscriptions/{sub['id']}",
    }
    if project is not None:
        links["project"] = f"/api/projects/{subject}"
    return {
        "id": alert["id"],
        "type": f"alert.{alert['kind']}",
        "created_at": as_ts(alert["created_at"]).isoformat(),  # type: ignore[union-attr]
        "subscription_id": sub["id"],
        "rule": rule_from_payload(json.loads(sub["rule"])).as_dict(),
        "subject": subject,
        "project": project,
        "value_before": shown(alert["metric"], alert["value_before"]),
        "value_after": shown(alert["metric"], alert["value_after"]),
        "figures_before": json.loads(alert["figures_before"] or "null"),
        "figures_after": after,
        "cause": {
            "position": alert["cause_position"],
            "stream": alert["cause_stream"],
            "version": alert["cause_version"],
            "type": alert["cause_type"],
        },
        "links": links,
    }


def deliver_due(
    db: Database,
    *,
    now: datetime | None = None,
    rng: Rng = random.random,
    send: Sender = post_webhook,
    allow_loopback: bool = False,
    policy: WebhookPolicy | None = None,
    limit: int = 50,
    timeout_s: float = TIMEOUT_S,
    smtp_url: str | None = None,
) -> dict[str, int]:
    """Attempt every due delivery once; return how many ended in each status.

    `policy` says where webhooks may go (default: public addresses, loopback if
    `allow_loopback`); the host is resolved once per attempt and the POST goes to the
    addresses that passed, so a name rebound to a private address is never contacted.
    """
    now = now or datetime.now(UTC)
    policy = policy or WebhookPolicy(allow_loopback=allow_loopback)
    counts: dict[str, int] = {}
    for alert_id, attempt, first_at in outbox.claim_due(db, now, limit, LEASE):
        alert, sub = outbox.alert_and_subscription(db, alert_id)
        outcome = _attempt(alert, sub, now, send, policy, timeout_s, smtp_url)
        nxt = None if outcome.ok else next_attempt_at(attempt, first_at, now, rng)
        if sub is not None and not sub["active"]:
            nxt = None
        status = outbox.record_attempt(
            db,
            alert_id,
            attempt,
            now,
            ok=outcome.ok,
            http_status=outcome.http_status,
            error=outcome.error,
            next_at=nxt,
        )
        counts[status] = counts.get(status, 0) + 1
    return counts


def _attempt(
    alert: dict[str, Any] | None,
    sub: dict[str, Any] | None,
    now: datetime,
    send: Sender,
    policy: WebhookPolicy,
    timeout_s: float,
    smtp_url: str | None,
) -> Outcome:
    if alert is None or sub is None:
        return Outcome(None, "the alert or its subscription is gone")
    if not sub["active"]:
        return Outcome(None, "the subscription was deleted")
    if sub["channel"] == "email":
        if not smtp_url:
            return Outcome(None, "SMTP_URL is not set: e-mail alerts cannot be sent")
        return Outcome(None, send_email(smtp_url, sub["target"], alert_body(alert, sub), timeout_s))
    try:
        target = policy.admit(sub["target"])
    except InvalidValue as error:
        log.warning("webhook delivery of alert %s refused by the URL policy", alert["id"])
        return Outcome(None, error.message)
    body = json.dumps(alert_body(alert, sub), separators=(",", ":")).encode()
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "panorama-alerts/1",
        "webhook-id": alert["id"],
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(sub["secret"] or "", alert["id"], timestamp, body),
    }
    return send(target, body, headers, timeout_s)
