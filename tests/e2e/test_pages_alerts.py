"""The /alerts pages over HTTP: sign-in, ownership, CSRF, the API's validation, idempotency."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, make_token

TOKENS: dict[int, str] = {}
HOOK = "http://127.0.0.1:9/hook"  # loopback, discard port: nothing listens, nothing leaves


@pytest.fixture
def services(settings: Settings, make_services: Any) -> Services:
    """The e2e services with a SECRET_KEY and loopback webhooks allowed (tests only)."""
    configured = replace(settings, secret_key="alerts-page-secret", allow_loopback_webhooks=True)
    return make_services(configured, today=lambda: TODAY)


def _client(
    app: Flask, services: Services, name: str, role: str = "subscriber", *ministries: str
) -> FlaskClient:
    client = app.test_client()
    token = make_token(services, role, *ministries, name=name)
    response = client.post(
        "/sign-in", data={"csrf_token": _hidden(client, "/sign-in"), "token": token}
    )
    assert response.status_code == 303
    TOKENS[id(client)] = token
    return client


def _api(client: FlaskClient, path: str) -> Any:
    """The API's answer for the signed-in person's token (the API takes bearer tokens)."""
    response = client.get(path, headers={"Authorization": f"Bearer {TOKENS[id(client)]}"})
    return response.status_code, response.get_json()


def _fields(client: FlaskClient, path: str) -> dict[str, str]:
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    found = re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', text)
    return {name: html.unescape(value) for name, value in found}


def _hidden(client: FlaskClient, path: str) -> str:
    return _fields(client, path)["csrf_token"]


def _rule(**changes: str) -> dict[str, str]:
    return {
        "metric": "budget_drift_pct",
        "comparator": ">",
        "threshold": "20",
        "clear_threshold": "15",
        "scope": "portfolio",
        "channel": "webhook",
        "url": HOOK,
        "action": "save",
    } | changes


def _create(client: FlaskClient, **changes: str) -> tuple[Any, dict[str, str]]:
    form = _fields(client, "/alerts/new") | _rule(**changes)
    return client.post("/alerts/new", data=form), form


def _subscription_id(client: FlaskClient) -> str:
    found = re.findall(
        r'data-subscription="([0-9a-f-]{36})"', client.get("/alerts").get_data(as_text=True)
    )
    assert len(found) == 1
    return found[0]


def test_anonymous_people_are_sent_to_sign_in(app: Flask) -> None:
    for path in ("/alerts", "/alerts/new"):
        response = app.test_client().get(path)
        assert response.status_code == 302 and "/sign-in?next=" in response.headers["Location"]


def test_a_manager_gets_a_403_page(app: Flask, services: Services) -> None:
    response = _client(app, services, "max", "manager", "MI").get("/alerts?lang=en")
    assert response.status_code == 403 and "subscriber or admin" in response.get_data(as_text=True)


def test_a_double_submit_records_one_subscription_and_shows_the_secret_again(
    app: Flask, services: Services
) -> None:
    client = _client(app, services, "sue")
    first, form = _create(client)
    assert first.status_code == 201
    secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', first.get_data(as_text=True))
    assert secret
    second = client.post("/alerts/new", data=form)  # the same form sent again
    assert second.headers["Idempotent-Replayed"] == "true"
    assert secret.group(1) in second.get_data(as_text=True)
    subscription_id = _subscription_id(client)
    _, api = _api(client, f"/api/subscriptions/{subscription_id}")
    assert api["rule"]["threshold"] == "20" and api["channel"]["target"] == HOOK
    assert "secret" not in api and secret.group(1) not in client.get(
        f"/alerts/{subscription_id}"
    ).get_data(as_text=True)


def test_a_refused_webhook_address_is_shown_next_to_the_url_field(
    app: Flask, services: Services
) -> None:
    client = _client(app, services, "sue")
    response, _ = _create(client, url="http://10.1.2.3/hook")  # refused, never delivered
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="error-summary"' in page
    assert re.search(r'id="url-error" class="field-error">[^<]*private', page)
    assert 'aria-invalid="true" aria-describedby="url-error' in page
    assert 'value="http://10.1.2.3/hook"' in page  # what was typed is kept
    assert _api(client, "/api/subscriptions") == (200, [])


def test_a_clear_threshold_on_the_wrong_side_is_refused_by_the_domain(
    app: Flask, services: Services
) -> None:
    client = _client(app, services, "sue")
    response, _ = _create(client, clear_threshold="25")
    assert response.status_code == 422
    assert re.search(
        r'id="clear_threshold-error" class="field-error">'
        r"with &gt;, the clear threshold must be at or below",
        response.get_data(as_text=True),
    )


def test_another_subscribers_subscription_is_neither_visible_nor_editable(
    app: Flask, services: Services
) -> None:
    owner = _client(app, services, "sue")
    assert _create(owner)[0].status_code == 201
    subscription_id = _subscription_id(owner)
    other = _client(app, services, "sam")
    assert subscription_id not in other.get("/alerts").get_data(as_text=True)
    for path in ("", "/edit", "/delete"):
        assert other.get(f"/alerts/{subscription_id}{path}").status_code == 404
    csrf = _hidden(other, "/alerts/new")
    data = {"csrf_token": csrf, "idempotency_key": "k-1", "version": "1", **_rule(threshold="99")}
    assert other.post(f"/alerts/{subscription_id}/edit", data=data).status_code == 404
    assert (
        other.post(
            f"/alerts/{subscription_id}/delete", data=data | {"idempotency_key": "k-2"}
        ).status_code
        == 404
    )
    _, kept = _api(owner, f"/api/subscriptions/{subscription_id}")
    assert kept["version"] == 1 and kept["rule"]["threshold"] == "20"


def test_a_form_without_its_csrf_token_is_refused(app: Flask, services: Services) -> None:
    client = _client(app, services, "sue")
    form = {
        k: v for k, v in (_fields(client, "/alerts/new") | _rule()).items() if k != "csrf_token"
    }
    response = client.post("/alerts/new", data=form)
    assert response.status_code == 400 and "csrf_token" in response.get_data(as_text=True)
    assert _api(client, "/api/subscriptions") == (200, [])


def test_a_stale_edit_shows_the_conflict_and_keeps_what_was_typed(
    app: Flask, services: Services
) -> None:
    client = _client(app, services, "sue")
    _create(client)
    subscription_id = _subscription_id(client)
    path = f"/alerts/{subscription_id}/edit"
    stale = _fields(client, path)
    fresh = _fields(client, path)
    saved = client.post(path, data=fresh | _rule(threshold="30", clear_threshold=""))
    assert saved.status_code == 303
    response = client.post(path, data=stale | _rule(threshold="40"))
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert 'id="conflict"' in page and 'value="40"' in page
    assert _api(client, f"/api/subscriptions/{subscription_id}")[1]["rule"]["threshold"] == "30"


def test_deleting_asks_for_confirmation_first(app: Flask, services: Services) -> None:
    client = _client(app, services, "sue")
    _create(client)
    subscription_id = _subscription_id(client)
    confirm = _fields(client, f"/alerts/{subscription_id}/delete")
    assert _api(client, f"/api/subscriptions/{subscription_id}")[0] == 200  # GET deletes nothing
    response = client.post(f"/alerts/{subscription_id}/delete", data=confirm)
    assert response.status_code == 303
    assert _api(client, f"/api/subscriptions/{subscription_id}")[0] == 404
    assert "data-subscription=" not in client.get("/alerts").get_data(as_text=True)


def test_the_audit_page_is_for_auditors_and_its_verification_is_recorded(
    app: Flask, services: Services
) -> None:
    assert app.test_client().get("/audit").status_code == 302  # anonymous: to /sign-in
    assert _client(app, services, "sue").get("/audit").status_code == 403  # as the API: 403
    auditor = _client(app, services, "ana", "auditor")
    csrf = _hidden(auditor, "/audit")
    assert auditor.post("/audit/verify", data={}).status_code == 400  # no CSRF token
    assert 'data-ok=""' in auditor.get("/audit").get_data(as_text=True)
    assert auditor.post("/audit/verify", data={"csrf_token": csrf}).status_code == 303
    assert 'data-ok="true"' in auditor.get("/audit").get_data(as_text=True)
    csv = auditor.get("/audit?format=csv").get_data(as_text=True)
    assert "verification_ok,true" in csv.lower() and "verified_by,token:" in csv
    checkpoint = auditor.get("/audit/checkpoint.json")
    assert checkpoint.headers["Content-Disposition"].startswith("attachment; filename=")
    assert set(checkpoint.get_json()) == {"position", "chain_head", "time", "key_id", "signature"}
