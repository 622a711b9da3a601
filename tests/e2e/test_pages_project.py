"""The project page over HTTP: manager forms in scope only, CSRF, idempotent forms, 404s."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, Http, make_token

SECRET = "pages-test-secret-key"


@pytest.fixture
def services(settings: Settings, make_services: Any) -> Services:
    return make_services(replace(settings, secret_key=SECRET), today=lambda: TODAY)


@pytest.fixture
def project_id(http: Http) -> str:
    return http.register(name="SI paie", ministry_code="MINARM", cost="1000000.00")


def _signed_in(app: Flask, services: Services, role: str, *ministries: str) -> FlaskClient:
    browser = app.test_client()
    page = browser.get("/sign-in").get_data(as_text=True)
    token = make_token(services, role, *ministries, name=f"{role}-{'-'.join(ministries)}")
    response = browser.post("/sign-in", data={"csrf_token": _csrf(page), "token": token})
    assert response.status_code == 303
    return browser


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _form(html: str, name: str) -> dict[str, str]:
    """The hidden fields of one form of the page, as the browser would send them."""
    block = re.search(rf'<form[^>]*id="form-{name}".*?</form>', html, flags=re.S)
    assert block, html
    return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', block.group(0)))


def _cost_form(browser: FlaskClient, project_id: str, amount: str) -> dict[str, str]:
    html = browser.get(f"/projects/{project_id}").get_data(as_text=True)
    return _form(html, "cost") | {"amount": amount, "effective_date": "2024-06-01"}


def test_a_manager_of_another_ministry_sees_no_form_and_a_post_is_403(
    app: Flask, services: Services, http: Http, project_id: str
) -> None:
    outsider = _signed_in(app, services, "manager", "MJ")
    html = outsider.get(f"/projects/{project_id}").get_data(as_text=True)
    assert 'id="form-cost"' not in html and "SI paie" in html
    insider = _signed_in(app, services, "manager", "MINARM")
    data = _cost_form(insider, project_id, "2000000.00")
    data["csrf_token"] = _csrf(html)  # the outsider's own session token
    response = outsider.post(f"/projects/{project_id}/cost", data=data)
    assert response.status_code == 403 and response.mimetype == "text/html"
    assert len(http.events(project_id)) == 1  # nothing recorded


def test_a_manager_in_scope_records_a_cost_and_is_sent_to_the_new_figure(
    app: Flask, services: Services, http: Http, project_id: str
) -> None:
    manager = _signed_in(app, services, "manager", "MINARM")
    response = manager.post(
        f"/projects/{project_id}/cost?lang=en", data=_cost_form(manager, project_id, "2 500 000,50")
    )
    assert response.status_code == 303
    assert "min_position=" in response.headers["Location"]
    page = manager.get(response.headers["Location"]).get_data(as_text=True)
    assert "€2.50m" in page and "The new cost is recorded." in page
    events = http.events(project_id)
    assert (
        events[-1]["type"] == "CostReestimated" and events[-1]["payload"]["amount"] == "2500000.50"
    )
    assert events[-1]["actor"] == "token:manager-MINARM" and events[-1]["source"] == "web"


def test_a_form_posted_twice_records_once(
    app: Flask, services: Services, http: Http, project_id: str
) -> None:
    manager = _signed_in(app, services, "manager", "MINARM")
    data = _cost_form(manager, project_id, "3000000.00")
    first = manager.post(f"/projects/{project_id}/cost", data=data)
    second = manager.post(f"/projects/{project_id}/cost", data=data)
    assert first.status_code == second.status_code == 303
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert [e["type"] for e in http.events(project_id)] == ["Registered", "CostReestimated"]


def test_a_stale_form_is_a_409_page_with_the_other_change_and_the_typed_value(
    app: Flask, services: Services, http: Http, project_id: str
) -> None:
    manager = _signed_in(app, services, "manager", "MINARM")
    stale = _cost_form(manager, project_id, "4000000.00")
    moved = http.command(project_id, "schedule-estimates", {"planned_end": "2027-01-31"})
    assert moved.status_code == 201
    response = manager.post(f"/projects/{project_id}/cost?lang=en", data=stale)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "The project changed since you opened this form" in html
    assert 'data-version="2"' in html and "token:e2e-admin" in html
    assert 'value="4000000.00"' in html and 'name="expected_version" value="2"' in html
    assert len(http.events(project_id)) == 2  # the stale form recorded nothing
    again = manager.post(
        f"/projects/{project_id}/cost",
        data=_form(html, "cost") | {"amount": "4000000.00", "effective_date": "2024-06-01"},
    )
    assert again.status_code == 303
    assert http.events(project_id)[-1]["payload"]["amount"] == "4000000.00"


def test_a_refusal_is_a_422_page_with_the_message_by_the_field(
    app: Flask, services: Services, http: Http, project_id: str
) -> None:
    manager = _signed_in(app, services, "manager", "MINARM")
    html = manager.get(f"/projects/{project_id}").get_data(as_text=True)
    data = _form(html, "rating") | {"rating": "Red", "effective_date": "2024-06-01"}
    response = manager.post(f"/projects/{project_id}/rating?lang=en", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    described = 'aria-describedby="rating-narrative-hint rating-narrative-error"'
    assert f'id="rating-narrative" name="narrative" {described} aria-invalid="true"' in page
    assert "Red rating needs a narrative" in page and 'href="#rating-narrative"' in page
    assert '<option value="Red" selected>' in page
    bad = _form(html, "cost") | {"amount": "douze", "effective_date": "2024-06-01"}
    refused = manager.post(f"/projects/{project_id}/cost?lang=en", data=bad)
    assert refused.status_code == 422 and 'id="cost-amount-error"' in refused.get_data(as_text=True)
    assert 'value="douze"' in refused.get_data(as_text=True)
    assert len(http.events(project_id)) == 1


def test_a_form_without_its_csrf_token_is_refused(
    app: Flask, services: Services, http: Http, project_id: str
) -> None:
    manager = _signed_in(app, services, "manager", "MINARM")
    data = _cost_form(manager, project_id, "5000000.00")
    del data["csrf_token"]
    response = manager.post(f"/projects/{project_id}/cost", data=data)
    assert response.status_code == 400 and "csrf_token" in response.get_data(as_text=True)
    assert len(http.events(project_id)) == 1


def test_an_anonymous_post_goes_to_sign_in_and_records_nothing(
    app: Flask, http: Http, project_id: str
) -> None:
    browser = app.test_client()
    html = browser.get(f"/projects/{project_id}").get_data(as_text=True)
    assert 'id="form-cost"' not in html
    csrf = _csrf(browser.get("/sign-in").get_data(as_text=True))
    data = {"csrf_token": csrf, "amount": "1.00", "expected_version": "1"}
    response = browser.post(f"/projects/{project_id}/cost", data=data)
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    assert len(http.events(project_id)) == 1


def test_an_unknown_project_is_a_404_page(app: Flask, project_id: str) -> None:
    browser = app.test_client()
    for path in ("/projects/8d1f0000-0000-4000-8000-000000000000", "/projects/not-an-id"):
        response = browser.get(path + "?lang=en")
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert "This page cannot be shown" in response.get_data(as_text=True)
    early = browser.get(f"/projects/{project_id}?as_of=2023-01-01")
    assert early.status_code == 404 and "not registered yet" in early.get_data(as_text=True)
