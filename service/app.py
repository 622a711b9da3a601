"""The Flask application factory: nothing is built at import time."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import CodeType, FunctionType, MethodType
from typing import Any

import swagger_ui_bundle
from flask import Flask, Response, current_app, request, send_from_directory
from flask.views import MethodView

from service import idempotency, log_redaction
from service.audit import audit
from service.auth import SCHEME, authorize_request, forbid_foreign_source
from service.blueprints import Blueprint
from service.bootstrap import Services, bootstrap
from service.commands import projects
from service.config import Settings
from service.context import attach, current_services
from service.editions import editions
from service.errors import Problem, ProblemApi, register_error_handlers
from service.ministries import ministries
from service.programmes import programmes
from service.queries import reads
from service.schemas import StatusSchema
from service.subscriptions import alerting
from service.tokens import TokenStore
from service.web import init_app as init_pages

DOCS_STATIC = "/api/docs/static/"

ops = Blueprint("ops", __name__, description="Liveness and readiness probes.")


class PanoramaFlask(Flask):
    """Flask, with `ensure_sync` remembering the code objects it found synchronous.

    Flask calls `ensure_sync` on every hook, view and handler of every request (two dozen
    per command), each an `inspect.iscoroutinefunction`: ≈3 % of a command's CPU. Whether
    a plain function or method is a coroutine function is a flag of its code object, so it
    is asked once per code object (a finite set: they are made when modules compile).
    """

    _sync_code: set[CodeType] = set()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        kind = type(func)
        target = func.__func__ if kind is MethodType else func  # type: ignore[attr-defined]
        if type(target) is not FunctionType:
            return super().ensure_sync(func)
        code = target.__code__
        if code in self._sync_code:
            return func
        result = super().ensure_sync(func)
        if result is func:
            self._sync_code.add(code)
        return result


def create_app(services: Services | None = None, settings: Settings | None = None) -> Flask:
    """Build the app around `services` (or bootstrap them from `settings` / the environment)."""
    log_redaction.install()
    services = services or bootstrap(settings)
    app = PanoramaFlask(__name__)
    app.config.update(
        API_TITLE="Panorama",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=DOCS_STATIC,
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        MAX_CONTENT_LENGTH=services.settings.max_body_bytes,
    )
    attach(app, services)
    api = ProblemApi(app)
    api.spec.components.security_scheme(SCHEME, {"type": "http", "scheme": "bearer"})
    register_error_handlers(app)
    tokens = TokenStore(services.db, cache_s=services.settings.token_cache_s)
    tokens.create_table()
    app.extensions["panorama_tokens"] = tokens
    app.before_request(authorize_request)  # first: a refusal precedes body checks and claims
    app.before_request(refuse_undeclared_query)
    app.before_request(require_json_body)
    app.before_request(forbid_foreign_source)  # before the idempotency claim
    settings = services.settings
    store = idempotency.IdempotencyStore(
        services.db, lease_s=settings.idempotency_lease_s, ttl_s=settings.idempotency_ttl_s
    )
    store.create_table()
    idempotency.init_app(app, store)
    for blueprint in (ops, projects, programmes, reads, editions, audit, alerting, ministries):
        api.register_blueprint(blueprint)
    app.add_url_rule(f"{DOCS_STATIC}<path:filename>", "swagger_ui_static", swagger_ui_static)
    init_pages(app)
    return app


def refuse_undeclared_query() -> None:
    """A GET under /api that declares no query parameter refuses any: 400 naming them.

    (One that declares some refuses the unknown ones through its schema.)
    """
    if request.method != "GET" or not request.args or not request.path.startswith("/api/"):
        return
    view = current_app.view_functions.get(request.endpoint or "")
    method = getattr(getattr(view, "view_class", None), "get", None)
    doc = getattr(method, "_apidoc", None)
    if doc is None:  # not an operation of ours (the OpenAPI document, Swagger UI's files)
        return
    parameters = doc.get("arguments", {}).get("parameters", [])
    if any(p.get("in") == "query" for p in parameters):
        return
    names = sorted(request.args)
    raise Problem(
        400,
        f"unknown query parameter{'s' if len(names) > 1 else ''}: {', '.join(names)}",
        field=names[0],
    )


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # a DELETE is checked when it has a body


def require_json_body() -> None:
    """A body is JSON: refuse other media types (415) and unparsable or too deep JSON (400)."""
    if (
        request.endpoint is None
        or request.method in ("GET", "HEAD", "OPTIONS")
        or request.blueprint == "web"  # the pages post HTML forms
    ):
        return
    if request.method not in BODY_METHODS and not _has_body():
        return
    if not request.is_json:
        raise Problem(415, "send the command as application/json", field="Content-Type")
    try:
        json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):
        raise Problem(400, "the body is not valid JSON", field="body") from None


def _has_body() -> bool:
    return bool(request.content_length) or request.headers.get("Transfer-Encoding") == "chunked"


def swagger_ui_static(filename: str) -> Response:
    """Swagger UI's files, shipped by the swagger-ui-bundle package (no CDN)."""
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)


@ops.route("/healthz")
class Health(MethodView):
    @ops.response(200, StatusSchema)
    def get(self) -> dict[str, Any]:
        """Liveness: 200 while the process is up."""
        return {"status": "ok"}


@ops.route("/readyz")
class Readiness(MethodView):
    @ops.response(200, StatusSchema)
    @ops.alt_response(503, response="SERVICE_UNAVAILABLE")
    def get(self) -> dict[str, Any]:
        """Readiness: 200 when the event store and the database answer, else 503."""
        services = current_services()
        try:
            services.db.ping()
            position = services.portfolio.recorder.max_notification_id()
        except Exception as e:
            raise Problem(503, f"the event store is not reachable ({type(e).__name__})") from e
        return {"status": "ready", "position": position or 0}
