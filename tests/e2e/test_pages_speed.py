"""What makes the pages fast: gzip, the editions' figures as a region, figures kept per position."""

from __future__ import annotations

import gzip
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import TODAY, Http


@pytest.fixture
def services(settings: Settings, make_services: Any) -> Services:
    """The e2e services, with a SECRET_KEY (production requires one to sign sessions)."""
    return make_services(replace(settings, secret_key="speed-test-secret"), today=lambda: TODAY)


def test_pages_and_scripts_are_gzipped_when_the_browser_accepts_it(client: FlaskClient) -> None:
    page = client.get("/", headers={"Accept-Encoding": "gzip, deflate"})
    assert page.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in page.headers["Vary"]
    assert b"<html" in gzip.decompress(page.get_data())
    script = client.get("/assets/vendor/echarts.common.min.js", headers={"Accept-Encoding": "gzip"})
    assert script.headers["Content-Encoding"] == "gzip"
    assert len(script.get_data()) < len(gzip.decompress(script.get_data())) / 2
    plain = client.get("/")
    assert "Content-Encoding" not in plain.headers and b"<html" in plain.get_data()


def test_the_editions_figures_are_a_region_of_the_home_page(client: FlaskClient) -> None:
    home = client.get("/?lang=en").get_data(as_text=True)
    assert 'hx-get="/editions/figures?lang=en" hx-trigger="load"' in home
    region = client.get("/editions/figures?lang=en", headers={"HX-Request": "true"})
    assert 'id="timeline-region"' in region.get_data(as_text=True)
    assert "<html" not in region.get_data(as_text=True)
    assert "<html" in client.get("/editions/figures?lang=en").get_data(as_text=True)


def test_a_new_event_shows_at_once_on_the_home_page(client: FlaskClient, http: Http) -> None:
    http.register(name="SI paie", ministry_code="MINARM", cost="1000000.00")
    before = client.get("/?as_of=2024-06-01").get_data(as_text=True)
    assert 'data-figure="projects" data-value="1"' in before
    http.register(name="SI RH", ministry_code="MEF", cost="2000000.00")
    after = client.get("/?as_of=2024-06-01").get_data(as_text=True)
    assert 'data-figure="projects" data-value="2"' in after
