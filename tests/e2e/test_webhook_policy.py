"""The webhook URL policy over HTTP: every deployment refuses non-public targets, names resolve."""

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
     "127.0.0.1", "[::1]", "0.0.0.0", "224.0.0.251", "240.0.0.1", "localhost", "100.64.0.1",
     "[fd00:ec2::254]", "[::ffff:10.0.0.1]", "[::ffff:127.0.0.1]", "[64:ff9b::a9fe:a9fe]",
     "[2002:a00:1::]"],
)  # fmt: skip
def test_every_deployment_refuses_each_class_of_non_public_address_naming_the_url(
    settings: Settings, make_services: Callable[..., Services], host: str
) -> None:
    client = admin_client(make_services(settings, today=lambda: TODAY))
    response = client.post("/api/subscriptions", json=subscription(f"http://{host}:8080/hook"))
    problem = assert_problem(response, 422, "url")
    assert "resolves to a" in problem["detail"]
    assert client.get("/api/subscriptions").get_json() == []


@pytest.mark.parametrize(
    "url",
    ["http://2130706433:8080/h", "http://0x7f.1:8080/h", "http://0177.0.0.1:8080/h",
     "http://127.1:8080/h", "http://u:p@127.0.0.1:8080/h", "gopher://127.0.0.1:8080/",
     "file:///etc/passwd", "http://[::1%25lo]:8080/h"],
)  # fmt: skip
def test_odd_spellings_userinfo_and_other_schemes_are_refused_even_with_the_loopback_flag(
    settings: Settings, make_services: Callable[..., Services], url: str
) -> None:
    loopback = dataclasses.replace(settings, allow_loopback_webhooks=True)
    client = admin_client(make_services(loopback, today=lambda: TODAY))
    assert_problem(client.post("/api/subscriptions", json=subscription(url)), 422, "url")
    assert client.get("/api/subscriptions").get_json() == []


def test_a_patch_to_a_refused_url_is_422_and_keeps_the_old_one(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    loopback = dataclasses.replace(settings, allow_loopback_webhooks=True)
    client = admin_client(make_services(loopback, today=lambda: TODAY))
    created = client.post("/api/subscriptions", json=subscription("http://127.0.0.1:9/h"))
    assert created.status_code == 201, created.get_json()
    sid = created.get_json()["id"]
    patched = client.patch(f"/api/subscriptions/{sid}", json={"url": "http://10.0.0.1/h"})
    assert_problem(patched, 422, "url")
    assert (
        client.get(f"/api/subscriptions/{sid}")
        .get_json()["channel"]["target"]
        .startswith("http://127.0.0.1:9/")
    )


def test_the_allowlist_and_the_loopback_flag_admit_what_they_name(
    pg_settings: Settings, make_services: Callable[..., Services], names: dict[str, str]
) -> None:
    names["hooks.intranet.test"] = "127.0.0.9"
    settings = dataclasses.replace(
        pg_settings, webhook_allowlist=("hooks.intranet.test", "127.0.0.4/30")
    )
    client = admin_client(make_services(settings, today=lambda: TODAY))
    for url in ("http://hooks.intranet.test:9/h", "http://127.0.0.5:9/h"):
        assert client.post("/api/subscriptions", json=subscription(url)).status_code == 201
    for url in ("http://127.0.0.9:9/h", "http://localhost:9/h", "http://nowhere.test/h",
                "http://10.9.8.7/h"):  # fmt: skip
        assert_problem(client.post("/api/subscriptions", json=subscription(url)), 422, "url")
    loopback = dataclasses.replace(pg_settings, allow_loopback_webhooks=True)
    other = admin_client(make_services(loopback, today=lambda: TODAY))
    assert other.post("/api/subscriptions", json=subscription("http://localhost:9/h")).status_code
    assert_problem(other.post("/api/subscriptions", json=subscription("http://10.0.0.1/")), 422)


def test_the_embedded_default_refuses_private_ranges_too(
    sqlite_settings: Settings, make_services: Callable[..., Services]
) -> None:
    client = admin_client(make_services(sqlite_settings, today=lambda: TODAY))
    for url in (
        "http://192.168.1.5:8080/h",
        "http://10.0.0.1/",
        "http://localhost:8080/h",
        "http://169.254.169.254/",
        "http://u:p@10.0.0.1/",
        "gopher://10.0.0.1/",
    ):
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


@pytest.mark.parametrize(
    ("url", "why"),
    [("http://xn--zz.example/h", "not a valid international domain name"),
     ("http://💩.la/h", "not a valid international domain name"),
     ("http://bücher..example/h", "not a valid international domain name"),
     ("http://bücher.example：8080/h", "does not parse"),
     ("http://ｌｏｃａｌｈｏｓｔ:8080/h", "resolves to a loopback address"),
     ("http://１２７。０。０。１:8080/h", "resolves to a loopback address")],
)  # fmt: skip
def test_an_invalid_or_non_public_international_host_is_a_problem_naming_the_url(
    sqlite_settings: Settings, make_services: Callable[..., Services], url: str, why: str
) -> None:
    client = admin_client(make_services(sqlite_settings, today=lambda: TODAY))
    problem = assert_problem(client.post("/api/subscriptions", json=subscription(url)), 422, "url")
    assert why in problem["detail"]
    assert client.get("/api/subscriptions").get_json() == []
