"""Refusals on a French page are in French: the domain's and the schemas' messages."""

from __future__ import annotations

from flask import Flask

from service.bootstrap import Services
from tests.e2e import test_pages_project as project_page
from tests.e2e.conftest import Http
from tests.e2e.test_pages_project import _form, _signed_in

services = project_page.services  # the module's fixtures: its clock and its signing key
project_id = project_page.project_id


def test_a_red_rating_without_narrative_is_refused_in_french(
    app: Flask, services: Services, http: Http, project_id: str
) -> None:
    manager = _signed_in(app, services, "manager", "MINARM")
    html = manager.get(f"/projects/{project_id}?lang=fr").get_data(as_text=True)
    data = _form(html, "rating") | {"rating": "Red", "effective_date": "2024-06-01"}
    page = manager.post(f"/projects/{project_id}/rating?lang=fr", data=data).get_data(as_text=True)
    assert "Une notation rouge demande un commentaire" in page
    assert "needs a narrative" not in page


def test_a_future_date_and_a_missing_amount_are_refused_in_french(
    app: Flask, services: Services, http: Http, project_id: str
) -> None:
    manager = _signed_in(app, services, "manager", "MINARM")
    html = manager.get(f"/projects/{project_id}?lang=fr").get_data(as_text=True)
    future = _form(html, "cost") | {"amount": "12,50", "effective_date": "2099-01-01"}
    page = manager.post(f"/projects/{project_id}/cost?lang=fr", data=future).get_data(as_text=True)
    assert "La date d’effet, 1 janvier 2099, est dans le futur" in page
    blank = _form(html, "cost") | {"amount": "", "effective_date": "2024-06-01"}
    page = manager.post(f"/projects/{project_id}/cost?lang=fr", data=blank).get_data(as_text=True)
    assert "Missing data" not in page and "Not a valid" not in page
