"""Subscriptions: e-mail refused up front without SMTP_URL, a deleted one's log still readable."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from service.app import create_app
from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, Http, assert_problem, authorize, bearer, make_token

CLOSED_PORT_URL = "http://127.0.0.1:9/hook"  # discard port: nothing listens, refused at once
EMAIL = {"metric": "budget_drift_pct", "comparator": ">", "threshold": "20",
         "scope": "portfolio", "channel": "email", "email": "press@example.org"}  # fmt: skip


def test_an_email_subscription_without_smtp_url_is_422_naming_the_channel(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    services = make_services(dataclasses.replace(settings, smtp_url=None), today=lambda: TODAY)
    client = authorize(create_app(services).test_client(), make_token(services, "subscriber"))
    problem = assert_problem(client.post("/api/subscriptions", json=EMAIL), 422, "channel")
    assert "SMTP_URL" in problem["detail"]
    assert client.get("/api/subscriptions").get_json() == []


def test_a_deleted_subscription_keeps_its_alerts_and_deliveries_readable(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    settings = dataclasses.replace(settings, allow_loopback_webhooks=True)
    services = make_services(settings, today=lambda: TODAY)
    app = create_app(services)
    admin = Http(authorize(app.test_client(), make_token(services, "admin")))
    alice, bob = make_token(services, "subscriber"), make_token(services, "subscriber")
    anon = app.test_client()
    pid = admin.register(cost="100.00")
    rule = {"metric": "current_cost", "comparator": ">=", "threshold": "120",
            "scope": "project", "scope_value": pid, "channel": "webhook",
            "url": CLOSED_PORT_URL}  # fmt: skip
    created = anon.post("/api/subscriptions", json=rule, headers=bearer(alice))
    assert created.status_code == 201, created.get_json()
    sid = created.get_json()["id"]
    assert admin.command(pid, "cost-estimates", {"amount": "125.00"}).status_code == 201
    log = f"/api/subscriptions/{sid}/deliveries"
    before = anon.get(log, headers=bearer(alice)).get_json()
    assert [d["attempt"] for d in before] == [1]
    assert anon.delete(f"/api/subscriptions/{sid}", headers=bearer(alice)).status_code == 200

    for token in (alice, None):  # the owner, then the admin (the Http client's token)
        headers = bearer(token) if token else {}
        client = anon if token else admin.client
        kept = client.get(log, headers=headers)
        assert kept.status_code == 200, kept.get_json()
        assert [d["attempt"] for d in kept.get_json()][:1] == [1]
        alerts = client.get(f"/api/alerts?subscription={sid}", headers=headers).get_json()
        assert [a["kind"] for a in alerts] == ["raised"]
    assert_problem(anon.get(log, headers=bearer(bob)), 404)
    assert_problem(anon.get(f"/api/subscriptions/{sid}", headers=bearer(alice)), 404)
