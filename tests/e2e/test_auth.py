"""Bearer tokens and roles: who may record what, who may read what, and nothing leaks."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from psycopg import sql
from werkzeug.test import TestResponse

from service.app import create_app
from service.auth import POLICY_ATTR, Policy
from service.bootstrap import Services
from service.config import Settings
from service.tokens import TABLE, TokenStore, token_hash
from tests.e2e.conftest import TODAY, Http, assert_problem, bearer, make_token

LATER = "2999-01-01T00:00:00Z"  # a known_at after every recording
PUBLIC_READS = (
    "/api/projects",
    "/api/portfolio/summary",
    "/api/portfolio/changes?from=2024-01-01&to=2024-06-01",
)


def unauthorized(response: TestResponse) -> None:
    assert_problem(response, 401, "Authorization")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_manager_cannot_touch_a_project_of_another_ministry(
    http: Http, services: Services
) -> None:
    mef = http.register(ministry_code="MEF")
    manager = make_token(services, "manager", "MJ", name="chef-mj")
    for resource, body in (
        ("cost-estimates", {"amount": "10.00"}),
        ("status-reports", {"rating": "Green"}),
        ("details-revisions", {"name": "Renamed"}),
    ):
        response = http.command(mef, resource, body, token=manager, key=f"k-{resource}")
        assert_problem(response, 403, "Authorization")
    assert len(http.events(mef)) == 1
    registration = {"name": "X", "ministry_code": "MEF", "effective_date": "2024-01-15"}
    assert_problem(http.post("/api/projects", registration, token=manager), 403, "Authorization")
    assert http.client.get("/api/projects").get_json()["total"] == 1


def test_a_manager_changes_a_project_of_its_ministry_as_its_token(
    http: Http, services: Services
) -> None:
    manager = make_token(services, "manager", "MJ", "MINT", name="chef-mj")
    registration = {"name": "Portalis", "ministry_code": "MJ", "effective_date": "2024-01-15"}
    created = http.post("/api/projects", registration, token=manager)
    assert created.status_code == 201, created.get_json()
    project = created.get_json()["id"]
    changed = http.command(project, "cost-estimates", {"amount": "10.00"}, token=manager)
    assert changed.status_code == 201, changed.get_json()
    moved = http.command(project, "details-revisions", {"ministry_code": "MEF"}, token=manager)
    assert_problem(moved, 403, "Authorization")
    assert [e["actor"] for e in http.events(project)] == ["token:chef-mj"] * 2
    award = {"name": "FTAP", "envelope": "10.00", "effective_date": "2024-01-01"}
    assert_problem(http.post("/api/funding-programmes", award, token=manager), 403)


def test_an_auditor_reads_everything_but_records_nothing(http: Http, services: Services) -> None:
    project = http.register()
    auditor = make_token(services, "auditor", name="cour-des-comptes")
    refused = http.command(project, "status-reports", {"rating": "Green"}, token=auditor)
    assert_problem(refused, 403, "Authorization")
    headers = bearer(auditor)
    for path in (
        f"/api/projects/{project}/events",
        f"/api/projects/{project}/history",
        f"/api/projects/{project}?known_at={LATER}",
        f"/api/portfolio/summary?known_at={LATER}",
    ):
        assert http.client.get(path, headers=headers).status_code == 200, path
    assert len(http.events(project)) == 1


@pytest.mark.parametrize("role", ["manager", "subscriber", None])
def test_audit_reads_need_an_auditor_or_an_admin(
    http: Http, services: Services, role: str | None
) -> None:
    project = http.register(ministry_code="MJ")
    anonymous = http.client.application.test_client()
    for path in (
        f"/api/projects/{project}/events",
        f"/api/projects/{project}/history",
        f"/api/projects/{project}?known_at=2024-06-01T00:00:00Z",
    ):
        if role is None:
            unauthorized(anonymous.get(path))
        else:
            token = make_token(services, role, *(["MJ"] if role == "manager" else []))
            assert_problem(anonymous.get(path, headers=bearer(token)), 403, "Authorization")
    subscriber = make_token(services, "subscriber")
    registration = {"name": "X", "ministry_code": "MJ", "effective_date": "2024-01-15"}
    assert_problem(http.post("/api/projects", registration, token=subscriber), 403)


def test_the_public_portfolio_is_anonymous_unless_public_read_is_off(
    http: Http, settings: Settings, make_services: Callable[..., Services]
) -> None:
    project = http.register()
    anonymous = http.client.application.test_client()
    for path in (*PUBLIC_READS, f"/api/projects/{project}"):
        assert anonymous.get(path).status_code == 200, path
    unauthorized(anonymous.post("/api/projects", json={"name": "x"}))
    assert anonymous.get("/healthz").status_code == 200

    private = make_services(dataclasses.replace(settings, public_read=False), today=lambda: TODAY)
    closed = create_app(private).test_client()
    for path in (*PUBLIC_READS, f"/api/projects/{project}"):
        unauthorized(closed.get(path))
    subscriber = make_token(private, "subscriber")
    for path in PUBLIC_READS:
        assert closed.get(path, headers=bearer(subscriber)).status_code == 200, path
    for path in ("/healthz", "/readyz", "/api/openapi.json", "/api/docs"):
        assert closed.get(path).status_code == 200, path


def test_a_revoked_token_is_refused(http: Http, services: Services) -> None:
    store = TokenStore(services.db)
    record, token = store.create("admin", name="leaver")
    project = http.register()
    ok = http.command(project, "status-reports", {"rating": "Green"}, token=token)
    assert ok.status_code == 201
    assert store.revoke(record.id) is not None
    unauthorized(http.command(project, "status-reports", {"rating": "Amber"}, token=token))
    unauthorized(http.client.get("/api/projects", headers=bearer(token)))
    assert len(http.events(project)) == 2
    assert [r.active for r in store.records() if r.name == "leaver"] == [False]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer pnr_0123456789abcdef_" + "x" * 43,  # well-formed, unknown
        "Bearer not-a-token",
        "Bearer two words",
        "Token abc",
    ],
)
def test_a_malformed_or_unknown_authorization_is_refused(
    client: FlaskClient, services: Services, header: str
) -> None:
    unauthorized(client.get("/api/projects", headers={"Authorization": header}))
    body = {"name": "x", "ministry_code": "MJ", "effective_date": "2024-01-15"}
    unauthorized(client.post("/api/projects", json=body, headers={"Authorization": header}))


def test_a_token_with_a_tampered_secret_is_refused(http: Http, services: Services) -> None:
    token = make_token(services)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    unauthorized(http.client.get("/api/projects", headers=bearer(tampered)))


def test_tokens_are_stored_only_as_hashes(services: Services) -> None:
    tokens = [make_token(services, role) for role in ("admin", "auditor", "subscriber")]
    tokens.append(make_token(services, "manager", "MJ"))
    with services.db.transaction(write=False) as tx:
        rows = tx.fetch(f"SELECT * FROM {TABLE}")  # noqa: S608 (a constant)
    dump = repr(rows)
    assert len(rows) == 4
    for token in tokens:
        secret = token.split("_", 2)[2]
        assert token not in dump and secret not in dump


def test_no_token_is_logged(
    http: Http,
    services: Services,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    manager = make_token(services, "manager", "MJ")
    project = http.register(ministry_code="MJ")
    http.command(project, "status-reports", {"rating": "Green"}, token=manager, key="k")
    http.command(project, "status-reports", {"rating": "Red"}, token=manager)  # a 409
    with monkeypatch.context() as patch:  # a 500 logs its traceback
        patch.setattr(services.portfolio, "report_status", _crash)
        crashed = http.command(project, "status-reports", {"rating": "Green"}, token=manager)
        assert crashed.status_code == 500
    http.command(http.register(ministry_code="MEF"), "status-reports", {"rating": "Green"})
    http.client.get(f"/api/projects/{project}/events", headers=bearer(manager))  # a 403
    http.client.get("/api/projects", headers=bearer(manager + "x"))  # a 401
    admin = http.client.environ_base["HTTP_AUTHORIZATION"].split()[1]
    assert caplog.records, "nothing was logged: the check would prove nothing"
    for token in (manager, admin):
        assert token not in caplog.text
        assert token.split("_", 2)[2] not in caplog.text


def _crash(*args: object, **kwargs: object) -> None:
    raise RuntimeError("the disk is on fire")


def test_gunicorn_access_log_records_no_authorization_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gunicorn.config import Config

    from service import gunicorn_app

    captured: dict[str, object] = {}

    class Capture:
        def __init__(self, options: dict[str, object]) -> None:
            captured.update(options)

        def run(self) -> None:
            pass

    monkeypatch.setattr(gunicorn_app, "PanoramaServer", Capture)
    gunicorn_app.run(Settings())
    assert captured["accesslog"] == "-" and "access_log_format" not in captured
    default = Config().access_log_format  # %(u)s decodes Basic credentials only, not Bearer
    assert "}i" not in default and "authorization" not in default.lower()


def test_every_api_route_declares_who_may_call_it(client: FlaskClient) -> None:
    app = client.application
    undeclared = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.rule.startswith(("/api/openapi", "/api/docs")):
            continue
        view = app.view_functions[rule.endpoint]
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            func = getattr(getattr(view, "view_class", None), method.lower(), view)
            if not isinstance(getattr(func, POLICY_ATTR, None), Policy):
                undeclared.add(rule.rule)
    assert not undeclared, sorted(undeclared)


# -- provenance: who may name an event's source --------------------------------------------
OFFICIAL = "panorama:2019-03"


def test_only_an_admin_names_the_source_of_an_event(http: Http, services: Services) -> None:
    manager = make_token(services, "manager", "MJ", name="chef-mj")
    subscriber = make_token(services, "subscriber")
    project = http.register(ministry_code="MJ")
    registration = {"name": "X", "ministry_code": "MJ", "effective_date": "2024-01-15"}
    for path, body, token in (
        ("/api/projects", registration | {"source": OFFICIAL}, manager),
        (
            f"/api/projects/{project}/cost-estimates",
            {"amount": "10.00", "source": OFFICIAL},
            manager,
        ),
        (f"/api/projects/{project}/status-reports", {"rating": "Green", "source": "api"}, manager),
        ("/api/subscriptions", {"source": OFFICIAL}, subscriber),
    ):
        body = {"effective_date": "2024-03-01"} | body
        refused = http.post(path, body, token=token, key=f"k-{path}")
        problem = assert_problem(refused, 403, "source")
        assert "source" in problem["detail"]
    assert len(http.events(project)) == 1
    assert http.client.get("/api/projects").get_json()["total"] == 1

    own = http.command(project, "cost-estimates", {"amount": "10.00"}, token=manager)
    assert own.status_code == 201, own.get_json()
    official = http.command(project, "cost-estimates", {"amount": "20.00", "source": OFFICIAL})
    assert official.status_code == 201, official.get_json()
    events = http.events(project)[1:]
    assert [(e["actor"], e["source"]) for e in events] == [
        ("token:chef-mj", "api"),
        ("token:e2e-admin", OFFICIAL),
    ]


# -- ministry codes: one canonical spelling (trimmed, upper case) ---------------------------
def test_a_ministry_code_is_trimmed_and_upper_cased_wherever_it_enters(
    http: Http, services: Services
) -> None:
    record, manager = TokenStore(services.db).create("manager", ministries=[" mj", "MAr "])
    assert record.ministries == ("MJ", "MAR")
    registration = {"name": "Portalis", "ministry_code": " mj", "effective_date": "2024-01-15"}
    created = http.post("/api/projects", registration, token=manager)
    assert created.status_code == 201, created.get_json()
    portalis = created.get_json()["id"]
    armees = http.register(ministry_code="MAr")
    for project in (portalis, armees):
        changed = http.command(project, "cost-estimates", {"amount": "10.00"}, token=manager)
        assert changed.status_code == 201, changed.get_json()
    answers = [http.client.get(f"/api/projects/{p}").get_json() for p in (portalis, armees)]
    assert [a["published_ministry_code"] for a in answers] == ["MJ", "MAR"]
    assert [a["ministry_code"] for a in answers] == ["MJ", "MINARM"]  # MAr: the Armées
    listed = http.client.get("/api/projects?ministry=mj").get_json()["items"]
    assert [p["id"] for p in listed] == [portalis]
    moved = http.command(portalis, "details-revisions", {"ministry_code": "mar "}, token=manager)
    assert moved.status_code == 201, moved.get_json()
    assert http.client.get(f"/api/projects/{portalis}").get_json()["ministry_code"] == "MINARM"

    subscription = {
        "metric": "budget_drift_pct",
        "comparator": ">",
        "threshold": "20",
        "scope": "ministry",
        "scope_value": " mj",
        "channel": "email",
        "email": "chef@example.org",
    }
    subscribed = http.post("/api/subscriptions", subscription)
    assert subscribed.status_code == 201, subscribed.get_json()
    assert subscribed.get_json()["rule"]["scope_value"] == "MJ"


# -- expiry, old databases, revocation across processes -------------------------------------
def _expire(services: Services, token_id: str, at: datetime) -> None:
    """Move a token's expiry (what the passing of time does)."""
    update = sql.SQL("UPDATE {} SET expires_at = %s WHERE id = %s").format(sql.Identifier(TABLE))
    with services.db.transaction() as tx:
        tx.execute(update, (at.isoformat(), token_id))


def test_an_expired_token_is_refused_as_expired(http: Http, services: Services) -> None:
    store = TokenStore(services.db)
    record, token = store.create("manager", ministries=["MJ"], lifetime=timedelta(hours=1))
    assert record.expires_at is not None and record.expires_at.tzinfo is not None
    project = http.register(ministry_code="MJ")
    assert (
        http.command(project, "status-reports", {"rating": "Green"}, token=token).status_code == 201
    )
    _expire(services, record.id, datetime.now(UTC) - timedelta(seconds=1))
    for response in (
        http.command(project, "status-reports", {"rating": "Amber"}, token=token),
        http.client.get("/api/projects", headers=bearer(token)),
    ):
        unauthorized(response)
        assert response.get_json()["detail"] == "expired"
    unknown = http.client.get("/api/projects", headers=bearer("pnr_0123456789abcdef_" + "x" * 43))
    assert unknown.get_json()["detail"] == "the token is unknown or revoked"
    assert len(http.events(project)) == 2
    wrong_secret = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert http.client.get("/api/projects", headers=bearer(wrong_secret)).get_json()["detail"] != (
        "expired"
    )
    assert [r.active for r in store.records() if r.id == record.id] == [False]


def test_new_tokens_expire_after_ninety_days_unless_told_otherwise(services: Services) -> None:
    store = TokenStore(services.db)
    store.create_table()
    before = datetime.now(UTC)
    default, _ = store.create("auditor")
    forever, _ = store.create("auditor", lifetime=None)
    assert default.expires_at is not None
    assert (
        before + timedelta(days=90) <= default.expires_at <= datetime.now(UTC) + timedelta(days=90)
    )
    assert forever.expires_at is None
    assert {r.id: r.expires_at for r in store.records()} == {
        default.id: default.expires_at,
        forever.id: None,
    }


OLD_DDL = (
    "CREATE TABLE {} (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL,"
    " ministries TEXT NOT NULL, hash TEXT NOT NULL, created_at TEXT NOT NULL,"
    " revoked_at TEXT, created_by TEXT)"
)


def test_a_token_of_a_database_older_than_expiry_keeps_working(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    old = make_services(settings, today=lambda: TODAY)
    token = "pnr_00112233aabbccdd_" + "S" * 43
    insert = sql.SQL(
        "INSERT INTO {} (id, name, role, ministries, hash, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
    ).format(sql.Identifier(TABLE))
    with old.db.transaction() as tx:
        tx.execute(sql.SQL(OLD_DDL).format(sql.Identifier(TABLE)))
        tx.execute(
            insert,
            (
                "00112233aabbccdd",
                "veteran",
                "admin",
                "[]",
                token_hash(token),
                "2020-01-01T00:00:00+00:00",
            ),
        )
    client = create_app(make_services(settings, today=lambda: TODAY)).test_client()
    assert client.get("/api/projects", headers=bearer(token)).status_code == 200
    body = {"name": "X", "ministry_code": "MJ", "effective_date": "2024-01-15"}
    assert client.post("/api/projects", json=body, headers=bearer(token)).status_code == 201
    [veteran] = TokenStore(old.db).records()
    assert (veteran.name, veteran.expires_at, veteran.active) == ("veteran", None, True)


def test_a_revocation_through_one_process_is_refused_by_another_at_once(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    first = create_app(make_services(settings, today=lambda: TODAY))
    second = create_app(make_services(settings, today=lambda: TODAY))
    store = first.extensions["panorama_tokens"]
    record, token = store.create("subscriber")
    clients = (first.test_client(), second.test_client())
    for _ in range(3):  # warm whatever either process might keep
        for client in clients:
            assert client.get("/api/subscriptions", headers=bearer(token)).status_code == 200
    assert store.revoke(record.id) is not None
    for client in reversed(clients):
        unauthorized(client.get("/api/subscriptions", headers=bearer(token)))
