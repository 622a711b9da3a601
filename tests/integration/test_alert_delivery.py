"""Alert webhooks to a real HTTP receiver on loopback, retries driven by an injected clock."""

from __future__ import annotations

import dataclasses
import email
import email.message
import email.policy
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask.testing import FlaskClient

from projections.alert_conditions import ALERT_NS
from service.app import create_app
from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, Http, authorize, make_token
from tests.integration.conftest import Production, wait_until
from workers.celery_app import CATCH_UP_TASK, DELIVER_TASK
from workers.delivery import RETRY_WINDOW, deliver_due, sign


class Receiver:
    """A webhook receiver: refuses the first `refuse` requests (503), then accepts (204)."""

    def __init__(self, refuse: int) -> None:
        self.refuse = refuse
        self.hold: threading.Event | None = None
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if len(receiver.requests) == 1 and receiver.hold is not None:
                    receiver.hold.wait(20)  # a slow receiver: the sender is mid-delivery
                self.send_response(503 if len(receiver.requests) <= receiver.refuse else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(refuse=3)
    yield r
    r.close()


@pytest.fixture
def services(settings: Settings, make_services: Callable[..., Services]) -> Services:
    settings = dataclasses.replace(settings, allow_loopback_webhooks=True)
    return make_services(settings, today=lambda: TODAY)


@pytest.fixture
def client(services: Services) -> FlaskClient:
    app = create_app(services)
    app.testing = True
    return authorize(app.test_client(), make_token(services, "admin"))


def subscribe(client: FlaskClient, url: str, project_id: str) -> dict[str, Any]:
    body = {
        "metric": "budget_drift_pct",
        "comparator": ">",
        "threshold": "20",
        "scope": "project",
        "scope_value": project_id,
        "channel": "webhook",
        "url": url,
    }
    response = client.post("/api/subscriptions", json=body)
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()
    return created


def outbox(services: Services) -> dict[str, Any]:
    with services.db.transaction(write=False) as tx:
        row = tx.fetchone("SELECT * FROM pr_alerts")
    assert row is not None
    return row


def test_a_refused_webhook_is_retried_until_accepted_with_one_id_and_a_valid_signature(
    services: Services, client: FlaskClient, receiver: Receiver
) -> None:
    http = Http(client)
    pid = http.register(cost="100.00")
    sub = subscribe(client, receiver.url, pid)
    assert http.command(pid, "cost-estimates", {"amount": "150"}).status_code == 201
    assert len(receiver.requests) == 1  # the embedded default tried once, in-process
    now = datetime.now(UTC)
    for _ in range(5):  # jump past each next attempt: no sleeping
        now += timedelta(hours=1)
        deliver_due(services.db, now=now, allow_loopback=True)
    assert len(receiver.requests) == 4
    ids = {headers["webhook-id"] for headers, _ in receiver.requests}
    [alert] = client.get("/api/alerts").get_json()
    assert ids == {alert["id"]}
    headers, body = receiver.requests[-1]
    expected = sign(sub["secret"], alert["id"], int(headers["webhook-timestamp"]), body)
    assert headers["webhook-signature"] == expected
    payload = json.loads(body)
    assert payload["id"] == alert["id"] and payload["project"]["id"] == pid
    assert (payload["value_before"], payload["value_after"]) == ("0.00", "50.00")
    assert payload["cause"]["type"] == "CostReestimated"
    assert payload["rule"]["threshold"] == "20" and payload["links"]["project"].endswith(pid)
    log = client.get(f"/api/subscriptions/{sub['id']}/deliveries").get_json()
    assert [(d["attempt"], d["status"], d["http_status"]) for d in log] == [
        (1, "failed", 503),
        (2, "failed", 503),
        (3, "failed", 503),
        (4, "ok", 204),
    ]
    assert outbox(services)["status"] == "delivered"
    assert deliver_due(services.db, now=now + timedelta(days=3), allow_loopback=True) == {}


def test_a_receiver_that_never_answers_ends_in_a_dead_letter_after_24_hours(
    services: Services, client: FlaskClient, receiver: Receiver
) -> None:
    receiver.refuse = 10_000
    http = Http(client)
    pid = http.register(cost="100.00")
    sub = subscribe(client, receiver.url, pid)
    http.command(pid, "cost-estimates", {"amount": "150"})
    first = outbox(services)
    start = alerts_projection_time(first["first_at"])
    now = start
    while outbox(services)["status"] == "pending":
        now += timedelta(minutes=30)
        deliver_due(services.db, now=now, rng=lambda: 1.0, allow_loopback=True)
        assert now - start < RETRY_WINDOW + timedelta(hours=2)
    log = client.get(f"/api/subscriptions/{sub['id']}/deliveries").get_json()
    assert log[-1]["status"] == "dead" and all(d["status"] == "failed" for d in log[:-1])
    assert len(log) == len(receiver.requests) > 20
    assert len({h["webhook-id"] for h, _ in receiver.requests}) == 1
    [alert] = client.get("/api/alerts").get_json()
    assert alert["delivery"] == "dead"
    receiver.refuse = 0
    redone = client.post(f"/api/alerts/{alert['id']}/redeliver", json={})
    assert redone.status_code == 202, redone.get_json()
    assert outbox(services)["status"] == "delivered"  # the embedded default sent it at once


def alerts_projection_time(value: Any) -> datetime:
    from projections.db import as_ts

    ts = as_ts(value)
    assert ts is not None
    return ts


def test_redelivering_an_unknown_alert_is_404(client: FlaskClient) -> None:
    response = client.post(f"/api/alerts/{ALERT_NS}/redeliver", json={})
    assert response.status_code == 404


class Mailbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[str, Mailbox]]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}?from=alerts@panorama.test", box
    controller.stop()


def test_an_email_alert_arrives_through_smtp_in_text_and_html(
    settings: Settings, make_services: Callable[..., Services], smtp: tuple[str, Mailbox]
) -> None:
    url, box = smtp
    services = make_services(dataclasses.replace(settings, smtp_url=url), today=lambda: TODAY)
    app = create_app(services)
    client = authorize(app.test_client(), make_token(services, "subscriber"))
    admin = Http(authorize(app.test_client(), make_token(services, "admin")))
    pid = admin.register(cost="100.00", name="SI RH")
    body = {"metric": "current_cost", "comparator": ">=", "threshold": "120", "scope": "project",
            "scope_value": pid, "channel": "email", "email": "press@example.org"}  # fmt: skip
    created = client.post("/api/subscriptions", json=body)
    assert created.status_code == 201 and created.get_json()["secret"] is None
    admin.command(pid, "cost-estimates", {"amount": "125"})
    [envelope] = box.messages
    assert envelope.rcpt_tos == ["press@example.org"]
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert "current_cost raised for SI RH" in message["Subject"]
    assert isinstance(message, email.message.EmailMessage)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and "Value: 100.00 -> 125" in text.get_content()
    assert html is not None and "<li>" in html.get_content()
    log = client.get(f"/api/subscriptions/{created.get_json()['id']}/deliveries").get_json()
    assert [(d["attempt"], d["status"]) for d in log] == [(1, "ok")]


def test_a_worker_killed_during_a_delivery_still_delivers_the_alert(
    production: Production,
) -> None:
    receiver = Receiver(refuse=0)
    receiver.hold = threading.Event()
    workers = production.workers
    try:  # the workers do everything
        services = production.services(lambda: TODAY, enqueue=False, allow_loopback_webhooks=True)
        app = create_app(services)
        client = authorize(app.test_client(), make_token(services, "admin"))
        http = Http(client)
        pid = http.register(cost="100.00")
        sub = subscribe(client, receiver.url, pid)
        http.command(pid, "cost-estimates", {"amount": "150"})
        first = workers.start()
        production.send(CATCH_UP_TASK, "alerts")  # then it enqueues the delivery
        wait_until(lambda: len(receiver.requests) == 1, 60, "the first attempt to arrive")
        workers.kill(first)  # kill -9 while the receiver holds the request
        receiver.hold.set()
        row = outbox(services)
        assert row["status"] == "pending" and row["attempts"] == 1
        with services.db.transaction() as tx:  # the 2-minute lease has ended
            tx.execute("UPDATE pr_alerts SET next_attempt_at = now() - interval '1 second'")
        workers.start()
        production.send(DELIVER_TASK)
        wait_until(lambda: outbox(services)["status"] == "delivered", 60, "the redelivery")
    finally:
        receiver.close()
    assert len(receiver.requests) == 2
    [alert] = client.get("/api/alerts").get_json()
    for headers, body in receiver.requests:
        assert headers["webhook-id"] == alert["id"]
        signed = sign(sub["secret"], alert["id"], int(headers["webhook-timestamp"]), body)
        assert headers["webhook-signature"] == signed
    log = client.get(f"/api/subscriptions/{sub['id']}/deliveries").get_json()
    assert [(d["attempt"], d["status"]) for d in log] == [(1, "lost"), (2, "ok")]
