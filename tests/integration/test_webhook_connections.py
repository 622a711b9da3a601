"""Webhook connections: redirects are refused, the socket goes to the address that was checked.

Real HTTP(S) receivers on loopback (127.0.0.1 and 127.0.0.2), the loopback flag set.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient

from service.app import create_app
from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, Http, authorize, make_token
from workers.webhook_policy import WebhookPolicy
from workers.webhook_post import Outcome, post_webhook


class Receiver:
    """Answers every request (any method) with `status` and `headers`; keeps what it got."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0) -> None:
        self.status = 204
        self.headers: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                seen = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append((self.command, self.path, seen))
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_HEAD = answer  # noqa: N815

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://{address}:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(address: str = "127.0.0.1", port: int = 0) -> Receiver:
        started.append(Receiver(address, port))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture
def client(settings: Settings, make_services: Callable[..., Services]) -> FlaskClient:
    loopback = dataclasses.replace(settings, allow_loopback_webhooks=True)
    services = make_services(loopback, today=lambda: TODAY)
    app = create_app(services)
    app.testing = True
    return authorize(app.test_client(), make_token(services, "admin"))


def breach(client: FlaskClient, url: str) -> tuple[str, str]:
    """Subscribe `url` to a project's budget drift, then make it drift: (subscription, alert)."""
    http = Http(client)
    pid = http.register(cost="100.00")
    body = {"metric": "budget_drift_pct", "comparator": ">", "threshold": "20",
            "scope": "project", "scope_value": pid, "channel": "webhook", "url": url}  # fmt: skip
    created = client.post("/api/subscriptions", json=body)
    assert created.status_code == 201, created.get_json()
    assert http.command(pid, "cost-estimates", {"amount": "150"}).status_code == 201
    [alert] = client.get("/api/alerts").get_json()
    return created.get_json()["id"], alert["id"]


def deliveries(client: FlaskClient, sid: str) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = client.get(f"/api/subscriptions/{sid}/deliveries").get_json()
    return log


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_and_its_target_left_untouched_also_on_redeliver(
    client: FlaskClient, receivers: Callable[..., Receiver], status: int
) -> None:
    inner = receivers()
    outer = receivers()
    outer.status = status
    outer.headers = {"Location": f"http://127.0.0.1:{inner.port}/x"}
    sid, alert_id = breach(client, outer.url)  # the embedded default delivers at once
    redone = client.post(f"/api/alerts/{alert_id}/redeliver", json={})
    assert redone.status_code == 202, redone.get_json()
    assert inner.requests == []
    assert [(method, path) for method, path, _ in outer.requests] == [("POST", "/hook")] * 2
    log = deliveries(client, sid)
    assert [(d["attempt"], d["status"], d["http_status"]) for d in log] == [
        (1, "failed", status),
        (2, "failed", status),
    ]
    for attempt in log:
        assert attempt["error"].startswith(f"redirect refused (HTTP {status})")
        assert str(inner.port) not in attempt["error"] and "/x" not in attempt["error"]


def test_the_post_goes_to_the_checked_address_even_if_the_name_then_resolves_elsewhere(
    client: FlaskClient,
    receivers: Callable[..., Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked = receivers("127.0.0.1")
    other = receivers("127.0.0.2", checked.port)  # same port, another loopback address
    answers: list[str] = []
    asked: list[str] = []
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.pin.test":
            return real(host, port, *args, **kwargs)
        asked.append(host)
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    # the subscription's check, then the delivery's: 127.0.0.1; any later answer: 127.0.0.2
    answers.extend(["127.0.0.1", "127.0.0.1", "127.0.0.2"])
    sid, _ = breach(client, f"http://hooks.pin.test:{checked.port}/hook")
    assert other.requests == []
    [(method, path, headers)] = checked.requests
    assert (method, path, headers["host"]) == ("POST", "/hook", f"hooks.pin.test:{checked.port}")
    assert len(asked) == 2  # once when saved, once for the attempt: never again to connect
    assert [(d["status"], d["http_status"]) for d in deliveries(client, sid)] == [("ok", 204)]


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def tls_receiver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receivers: Callable[..., Receiver], name: str
) -> tuple[Receiver, list[str | None]]:
    """An HTTPS receiver on 127.0.0.1 certified for `name` (the only trusted certificate),
    and the server names (SNI) its clients send."""
    cert_file, key_file = self_signed(tmp_path, name)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # the only trusted certificate
    server = receivers("127.0.0.1")
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    return server, names


@pytest.mark.parametrize("certified", ["hooks.pin.test", "other.pin.test"])
def test_https_goes_to_the_checked_address_with_the_name_as_sni_and_certificate_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receivers: Callable[..., Receiver],
    certified: str,
) -> None:  # fmt: skip
    server, names = tls_receiver(tmp_path, monkeypatch, receivers, certified)
    policy = WebhookPolicy(allow_loopback=True, resolve=lambda host, port: ["127.0.0.1"])
    target = policy.admit(f"https://hooks.pin.test:{server.port}/hook")
    outcome = post_webhook(target, b"{}", {"Content-Type": "application/json"}, 5.0)
    assert names == ["hooks.pin.test"]  # SNI: the URL's name, while connecting to 127.0.0.1
    if certified == "hooks.pin.test":
        assert outcome == Outcome(204, None)
        [(_, _, headers)] = server.requests
        assert headers["host"] == f"hooks.pin.test:{server.port}"
    else:  # a certificate for another name is refused, nothing is posted
        assert outcome.http_status is None and "doesn't match" in (outcome.error or "")
        assert server.requests == []


def test_an_international_name_is_resolved_checked_and_posted_as_its_a_label(
    client: FlaskClient, receivers: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = receivers("127.0.0.1")
    asked: list[str] = []
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if not str(host).endswith(".test") and str(host).isascii():
            return real(host, port, *args, **kwargs)
        asked.append(host)  # a *.test name, or any non-ASCII one: only this table answers
        if host != "xn--bcher-kva.pin.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    url = f"http://BÜCHER。pin.test:{receiver.port}/hook"
    sid, _ = breach(client, url)
    assert client.get(f"/api/subscriptions/{sid}").get_json()["channel"]["target"] == url
    [(method, path, headers)] = receiver.requests
    assert (method, path) == ("POST", "/hook")
    assert headers["host"] == f"xn--bcher-kva.pin.test:{receiver.port}"
    assert asked == ["xn--bcher-kva.pin.test"] * 2  # saved, then the attempt; never Unicode
    assert [(d["status"], d["http_status"]) for d in deliveries(client, sid)] == [("ok", 204)]


def test_https_to_an_international_name_sends_its_a_label_as_sni_and_certificate_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receivers: Callable[..., Receiver]
) -> None:
    server, names = tls_receiver(tmp_path, monkeypatch, receivers, "xn--bcher-kva.pin.test")
    asked: list[str] = []
    policy = WebhookPolicy(
        allow_loopback=True, resolve=lambda host, port: asked.append(host) or ["127.0.0.1"]
    )
    target = policy.admit(f"https://bücher.pin.test:{server.port}/hook")
    outcome = post_webhook(target, b"{}", {"Content-Type": "application/json"}, 5.0)
    assert (asked, names, outcome) == (["xn--bcher-kva.pin.test"], ["xn--bcher-kva.pin.test"],
                                       Outcome(204, None))  # fmt: skip
    [(_, _, headers)] = server.requests
    assert headers["host"] == f"xn--bcher-kva.pin.test:{server.port}"
