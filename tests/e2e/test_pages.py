"""The pages over HTTP: security headers, sign-in and CSRF, permalinks, downloads, editions."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from psycopg import sql

from service.app import create_app
from service.bootstrap import Services
from service.config import Settings
from service.tokens import TABLE, TokenStore
from tests.e2e.conftest import TODAY, Http, make_token

SECRET = "pages-test-secret-key"


@pytest.fixture
def services(settings: Settings, make_services: Any) -> Services:
    """The e2e services, with a SECRET_KEY (production requires one to sign sessions)."""
    return make_services(replace(settings, secret_key=SECRET), today=lambda: TODAY)


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    """A client without a bearer token, like a person's browser."""
    return app.test_client()


def _csrf(client: FlaskClient, path: str = "/sign-in") -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _sign_in(client: FlaskClient, token: str) -> Any:
    return client.post("/sign-in", data={"csrf_token": _csrf(client), "token": token})


def test_every_page_has_a_strict_content_security_policy(browser: FlaskClient) -> None:
    for path in ("/", "/sign-in", "/assets/panorama.js"):
        response = browser.get(path)
        assert response.status_code == 200
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_carry_no_inline_script_and_no_other_origin(browser: FlaskClient) -> None:
    html = browser.get("/").get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts
    for attributes, body in scripts:
        assert 'src="/assets/' in attributes or 'type="application/json"' in attributes
        assert 'src="/assets/' not in attributes or not body.strip()
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert " style=" not in html and "<style" not in html


def test_a_token_signs_in_with_a_strict_session_cookie_and_signs_out(
    app: Flask, browser: FlaskClient, services: Services
) -> None:
    token = make_token(services, "auditor", name="ana")
    response = _sign_in(browser, token)
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Expires=" in cookie
    assert "Secure" not in cookie and token not in cookie  # plain http here; the id only
    assert "ana (auditor)" in browser.get("/").get_data(as_text=True)
    assert browser.get("/?known_at=2024-06-01T00:00:00Z").status_code == 200  # an auditor
    out = browser.post("/sign-out", data={"csrf_token": _csrf(browser, "/")})
    assert out.status_code == 303
    assert "ana (auditor)" not in browser.get("/").get_data(as_text=True)


def test_the_session_cookie_is_secure_over_https(app: Flask, services: Services) -> None:
    client = app.test_client()
    token = make_token(services, "subscriber", name="sue")
    csrf = re.search(
        r'name="csrf_token" value="([^"]+)"',
        client.get("/sign-in", base_url="https://localhost").get_data(as_text=True),
    )
    assert csrf
    response = client.post(
        "/sign-in", data={"csrf_token": csrf.group(1), "token": token}, base_url="https://localhost"
    )
    assert response.status_code == 303 and "Secure" in response.headers["Set-Cookie"]


def test_a_form_without_its_csrf_token_is_refused(browser: FlaskClient, services: Services) -> None:
    token = make_token(services, "admin", name="root2")
    browser.get("/sign-in")
    response = browser.post("/sign-in", data={"token": token})
    assert response.status_code == 400 and "csrf_token" in response.get_data(as_text=True)
    assert "Signed in" not in browser.get("/?lang=en").get_data(as_text=True)


def test_a_wrong_or_revoked_token_does_not_sign_in(
    browser: FlaskClient, services: Services
) -> None:
    assert _sign_in(browser, "pnr_0000000000000000_" + "x" * 43).status_code == 401
    token = make_token(services, "manager", "MI", name="max")
    assert _sign_in(browser, token).status_code == 303
    assert "max (manager)" in browser.get("/").get_data(as_text=True)
    store = TokenStore(services.db)
    store.revoke(next(r.id for r in store.records() if r.name == "max"))
    assert "max (manager)" not in browser.get("/").get_data(as_text=True)  # session ended


def test_an_expired_token_is_told_it_has_expired(browser: FlaskClient, services: Services) -> None:
    store = TokenStore(services.db)
    record, token = store.create("manager", ministries=["MI"], lifetime=timedelta(hours=1))
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    update = sql.SQL("UPDATE {} SET expires_at = %s WHERE id = %s").format(sql.Identifier(TABLE))
    with services.db.transaction() as tx:
        tx.execute(update, (past, record.id))
    response = _sign_in(browser, token)
    assert response.status_code == 401 and "Ce jeton a expiré" in response.get_data(as_text=True)


def test_known_at_is_for_auditors_as_in_the_api(browser: FlaskClient, services: Services) -> None:
    response = browser.get("/?known_at=2024-06-01T00:00:00Z&lang=en")
    assert response.status_code == 401 and "Sign in" in response.get_data(as_text=True)
    _sign_in(browser, make_token(services, "manager", "MI", name="mia"))
    assert browser.get("/?known_at=2024-06-01T00:00:00Z").status_code == 403


def test_a_bad_parameter_is_a_400_page_naming_it(browser: FlaskClient) -> None:
    response = browser.get("/?as_of=31-07-2018&lang=en")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "as_of" in response.get_data(as_text=True)
    assert browser.get("/?ministri=XX").status_code == 400


def test_pages_need_a_sign_in_when_public_read_is_off(
    settings: Settings, make_services: Any
) -> None:
    closed = make_services(replace(settings, public_read=False, secret_key=SECRET))
    client = create_app(closed).test_client()
    assert client.get("/").status_code == 401
    _sign_in(client, make_token(closed, "subscriber", name="sub"))
    assert client.get("/").status_code == 200


def test_the_home_page_downloads_exactly_its_view(
    browser: FlaskClient, http: Http, client: FlaskClient
) -> None:
    assert http.post("/api/ministries", {"code": "=HYPERLINK(1)", "name": "x"}).status_code == 201
    http.register(ministry_code="=HYPERLINK(1)", cost="1200000.00", phase="Déploiement")
    api = client.get("/api/portfolio/summary?as_of=2024-06-30").get_json()
    csv_response = browser.get("/?as_of=2024-06-30&format=csv")
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    lines = csv_response.get_data().decode("utf-8-sig").splitlines()
    assert lines[0].startswith("scope,key,projects,")
    assert lines[1].startswith(f"portfolio,,{api['projects']},")
    assert "ministry,'=HYPERLINK(1),1," in lines[2]  # neutralised, as in the summary
    assert csv_response.headers["X-Panorama-As-Of"] == "2024-06-30"
    assert len(csv_response.headers["X-Panorama-Chain-Head"]) == 64
    xlsx = browser.get("/?as_of=2024-06-30&format=xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.get_data()))["data"]
    assert [c.value for c in sheet[2]][:3] == ["portfolio", None, api["projects"]]


def test_every_page_states_what_it_reflects(browser: FlaskClient, http: Http) -> None:
    http.register()
    html = browser.get("/?as_of=2024-06-30&lang=en").get_data(as_text=True)
    assert '<time datetime="2024-06-30">30 June 2024</time>' in html
    assert re.search(r'data-reflects="position">\d+<', html)
    assert re.search(r'data-reflects="chain_head">[0-9a-f]{64}<', html)
    assert 'href="/?as_of=2024-06-30&amp;lang=fr"' in html  # the switch keeps the state


def test_editions_list_what_imports_recorded(client: FlaskClient, http: Http) -> None:
    http.register()  # a command, not an import: no edition
    body = client.get("/api/editions").get_json()
    assert body["items"] == [] and body["position"] >= 1


def test_production_without_secret_key_serves_pages_but_not_sign_in(
    pg_settings: Settings, make_services: Any
) -> None:
    client = create_app(make_services(pg_settings)).test_client()
    assert client.get("/").status_code == 200
    response = client.get("/sign-in")
    assert response.status_code == 503 and "SECRET_KEY" in response.get_data(as_text=True)


def test_the_embedded_default_keeps_one_generated_key(
    sqlite_settings: Settings, make_services: Any
) -> None:
    first = create_app(make_services(sqlite_settings))
    second = create_app(make_services(sqlite_settings))
    assert first.secret_key and first.secret_key == second.secret_key
    key_file = sqlite_settings.sqlite_path.parent / "web-secret-key"
    assert key_file.stat().st_mode & 0o077 == 0
