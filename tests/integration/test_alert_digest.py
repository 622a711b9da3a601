"""The daily digest to a real webhook receiver and a real SMTP server, with an injected clock."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from projections.db import as_ts
from service.app import create_app
from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, Http, authorize, make_token
from tests.integration.test_alert_delivery import Mailbox, Receiver
from tests.integration.test_alert_delivery import smtp as smtp  # the aiosmtpd fixture
from workers.celery_app import DIGEST_TASK, make_celery
from workers.delivery import sign
from workers.digest import send_digests


def subscribe(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    body = {
        "metric": "budget_drift_pct",
        "comparator": ">",
        "threshold": "20",
        "scope": "ministry",
        "scope_value": "MINARM",
    } | fields
    response = client.post("/api/subscriptions", json=body)
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()
    return created


def test_one_digest_per_subscriber_and_channel_once_per_day(
    settings: Settings, make_services: Callable[..., Services], smtp: tuple[str, Mailbox]
) -> None:
    url, box = smtp
    receiver = Receiver(refuse=0)
    try:
        settings = dataclasses.replace(settings, allow_loopback_webhooks=True, smtp_url=url)
        services = make_services(settings, today=lambda: TODAY)
        app = create_app(services)
        alice = authorize(app.test_client(), make_token(services, "subscriber"))
        bob = authorize(app.test_client(), make_token(services, "subscriber"))
        admin = Http(authorize(app.test_client(), make_token(services, "admin")))
        hook = {"channel": "webhook", "url": receiver.url, "digest": True}
        first = subscribe(alice, **hook)
        assert first["digest"] is True
        second = subscribe(alice, **hook, metric="current_cost", threshold="120")
        subscribe(alice, channel="email", email="press@example.org", digest=True)
        subscribe(bob, channel="webhook", url=receiver.url)  # no digest
        listed = alice.get("/api/subscriptions").get_json()
        assert [s["digest"] for s in listed] == [True, True, True]
        pid = admin.register(cost="100.00")
        admin.command(pid, "cost-estimates", {"amount": "150"})  # raises all four
        admin.command(pid, "cost-estimates", {"amount": "100"})  # clears all four
        immediate = len(receiver.requests)
        assert immediate == 6 and len(box.messages) == 2  # each alert on its own, as usual
        [alert, *_] = alice.get("/api/alerts").get_json()
        at = as_ts(alert["created_at"])
        assert at is not None
        now = at + timedelta(days=1)  # the next day, by the injected clock

        def digests(when: datetime) -> dict[str, int]:
            return send_digests(
                services.db, now=when, policy=settings.webhook_policy(), smtp_url=url
            )

        assert digests(now) == {"sent": 2, "failed": 0}
        assert len(receiver.requests) == immediate + 1 and len(box.messages) == 3
        headers, body = receiver.requests[-1]
        payload = json.loads(body)
        assert payload["type"] == "alert.digest" and payload["day"] == at.date().isoformat()
        assert payload["subscriptions"] == sorted([first["id"], second["id"]])
        assert (payload["count"], payload["raised"], payload["cleared"]) == (4, 2, 2)
        signed = sign(first["secret"], payload["id"], int(headers["webhook-timestamp"]), body)
        assert headers["webhook-id"] == payload["id"] and headers["webhook-signature"] == signed
        message = email.message_from_bytes(box.messages[-1].original_content,
                                           policy=email.policy.default)  # fmt: skip
        assert "2 alert(s), 1 raised, 1 cleared" in message["Subject"]
        assert box.messages[-1].rcpt_tos == ["press@example.org"]
        # the same day again (beat twice, two workers): claimed, nothing more is sent
        assert digests(now + timedelta(hours=3)) == {"sent": 0, "failed": 0}
        # the day after: no alert that day, nothing sent
        assert digests(now + timedelta(days=1)) == {"sent": 0, "failed": 0}
        assert len(receiver.requests) == immediate + 1 and len(box.messages) == 3
        with services.db.transaction(write=False) as tx:
            rows = tx.fetch("SELECT owner, day, status, messages FROM alert_digests")
        assert [(r["day"], r["status"], r["messages"]) for r in rows] == [
            (at.date().isoformat(), "sent", 2)
        ]
    finally:
        receiver.close()


def test_digest_can_be_switched_on_by_patch_and_beat_runs_it_daily(
    sqlite_settings: Settings, make_services: Callable[..., Services]
) -> None:
    settings = dataclasses.replace(sqlite_settings, allow_loopback_webhooks=True)
    services = make_services(settings, today=lambda: TODAY)
    client = authorize(create_app(services).test_client(), make_token(services, "subscriber"))
    created = subscribe(client, channel="webhook", url="http://127.0.0.1:9/hook")
    assert created["digest"] is False
    patched = client.patch(f"/api/subscriptions/{created['id']}", json={"digest": True})
    assert patched.status_code == 200 and patched.get_json()["digest"] is True
    assert patched.get_json()["secret"] is None  # the secret is kept, not shown again
    got = client.get(f"/api/subscriptions/{created['id']}").get_json()
    assert got["digest"] is True
    schedule = make_celery("redis://127.0.0.1:6379/0").conf.beat_schedule["alert-digests"]
    assert schedule["task"] == DIGEST_TASK
    assert schedule["schedule"].hour == {7} and schedule["schedule"].minute == {0}
