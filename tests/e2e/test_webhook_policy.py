"""The webhook URL policy over HTTP: production refuses private targets, names resolve."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.app import create_app
from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, Http, assert_problem, authorize, make_token

PUBLIC = "93.184.215.14"


def subscription(url: str, **fields: Any) -> dict[str, Any]:
    return {
        "metric": "budget_drift_pct",
        "comparator": ">",
        "threshold": "20",
        "scope": "portfolio",
        "channel": "webhook",
        "url": url,
    } | fields


def admin_client(services: Services) -> FlaskClient:
    app = create_app(services)
    app.testing = True
    return authorize(app.test_client(), make_token(services, "admin"))


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Host names of *.test resolve to what this mapping says (other names as usual)."""
    table: dict[str, str] = {}
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".test"):
            if host not in table:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return table


@pytest.mark.parametrize(
    "host",
    ["10.1.2.3", "172.20.0.1", "192.168.0.10", "[fd12::1]", "169.254.169.254", "[fe80::1]",
     "127.0.0.1", "[::1]", "0.0.0.0", "224.0.0.251", "240.0.0.1", "localhost"],
)  # fmt: skip
def test_production_refuses_each_class_of_private_address_naming_the_url(
    pg_settings: Settings, make_services: Callable[..., Services], host: str
) -> None:
    client = admin_client(make_services(pg_settings, today=lambda: TODAY))
    response = client.post("/api/subscriptions", json=subscription(f"http://{host}:8080/hook"))
    problem = assert_problem(response, 422, "url")
    assert "resolves to a" in problem["detail"]
    assert client.get("/api/subscriptions").get_json() == []


def test_the_allowlist_and_the_loopback_flag_admit_what_they_name(
    pg_settings: Settings, make_services: Callable[..., Services], names: dict[str, str]
) -> None:
    names["hooks.intranet.test"] = "10.9.8.7"
    settings = dataclasses.replace(
        pg_settings, webhook_allowlist=("hooks.intranet.test", "192.168.0.0/16")
    )
    client = admin_client(make_services(settings, today=lambda: TODAY))
    for url in ("http://hooks.intranet.test/h", "http://192.168.1.20:9000/h"):
        assert client.post("/api/subscriptions", json=subscription(url)).status_code == 201
    for url in ("http://10.9.8.7/h", "http://localhost:9/h", "http://nowhere.test/h"):
        assert_problem(client.post("/api/subscriptions", json=subscription(url)), 422, "url")
    loopback = dataclasses.replace(pg_settings, allow_loopback_webhooks=True)
    other = admin_client(make_services(loopback, today=lambda: TODAY))
    assert other.post("/api/subscriptions", json=subscription("http://localhost:9/h")).status_code
    assert_problem(other.post("/api/subscriptions", json=subscription("http://10.0.0.1/")), 422)


def test_the_embedded_default_admits_private_ranges_but_not_loopback_or_userinfo(
    sqlite_settings: Settings, make_services: Callable[..., Services]
) -> None:
    client = admin_client(make_services(sqlite_settings, today=lambda: TODAY))
    created = client.post("/api/subscriptions", json=subscription("http://192.168.1.5:8080/h"))
    assert created.status_code == 201, created.get_json()
    for url in ("http://localhost:8080/h", "http://169.254.169.254/", "http://u:p@10.0.0.1/",
                "gopher://10.0.0.1/"):  # fmt: skip
        assert_problem(client.post("/api/subscriptions", json=subscription(url)), 422, "url")


def test_a_host_rebound_to_a_private_address_is_refused_at_delivery(
    pg_settings: Settings, make_services: Callable[..., Services], names: dict[str, str]
) -> None:
    names["hooks.rebind.test"] = PUBLIC
    services = make_services(pg_settings, today=lambda: TODAY)
    client = admin_client(services)
    http = Http(client)
    pid = http.register(cost="100.00")
    body = subscription("https://hooks.rebind.test/h", scope="project", scope_value=pid)
    created = client.post("/api/subscriptions", json=body)
    assert created.status_code == 201, created.get_json()
    names["hooks.rebind.test"] = "10.0.0.7"  # DNS rebinding after the check
    assert http.command(pid, "cost-estimates", {"amount": "150"}).status_code == 201
    log = client.get(f"/api/subscriptions/{created.get_json()['id']}/deliveries").get_json()
    assert [(d["attempt"], d["status"], d["http_status"]) for d in log] == [(1, "failed", None)]
    assert log[0]["error"].startswith("refused: resolves to a private address")
