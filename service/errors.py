"""The one place where errors become RFC 7807 `application/problem+json` responses."""

from __future__ import annotations

import http
import json
import logging
import re
import sqlite3
from typing import Any

import psycopg
from eventsourcing.persistence import OperationalError as StoreOperationalError
from flask import Flask, Response
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import Schema
from werkzeug.exceptions import HTTPException

from domain.currency import CurrencyMismatch
from domain.errors import DomainError, NotFound, VersionConflict
from domain.ministry import MinistryCodeTaken, UnknownMinistry
from service.schemas import ProblemSchema

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
ERROR_STATUSES = (400, 404, 405, 409, 412, 413, 415, 422, 500, 503)
_KEPT_HEADERS = ("Allow", "Retry-After")
BUSY_RETRY_AFTER_S = 1
UNKNOWN_FIELD = Schema().error_messages["unknown"]


class Problem(Exception):
    """A refusal decided by the HTTP layer itself (a bad header, a reused key...)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.title = title or http.HTTPStatus(status).phrase
        self.headers = headers or {}


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    field: str | None = None,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An application/problem+json response."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title or http.HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    return response


def _words(name: str) -> list[str]:
    return re.findall(r"[A-Z][a-z0-9]*", name) or [name]


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Marshmallow's nested messages as {"field.sub": [message, ...]}."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = "body" if key == "_schema" and not prefix else str(key)
            flat.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "body": list(messages)}
    if isinstance(messages, list):
        flat = {}
        for item in messages:
            for key, value in _flatten(item, prefix).items():
                flat.setdefault(key, []).extend(value)
        return flat
    return {prefix or "body": [str(messages)]}


def validation_errors(data: dict[str, Any] | None) -> dict[str, list[str]]:
    """The messages webargs attached to its 400/422, without the location level."""
    messages = (data or {}).get("messages") or {}
    flat: dict[str, list[str]] = {}
    for value in messages.values() if isinstance(messages, dict) else [messages]:
        flat.update(_flatten(value))
    return flat


def unknown_query_parameters(data: dict[str, Any] | None) -> list[str]:
    """The query parameters webargs refused as unknown (the schema's `unknown = RAISE`)."""
    messages = (data or {}).get("messages") or {}
    query = messages.get("query") if isinstance(messages, dict) else None
    if not isinstance(query, dict):
        return []
    return sorted(k for k, v in query.items() if v == [UNKNOWN_FIELD])


# -- handlers --------------------------------------------------------------------------------
def handle_problem(error: Problem) -> Response:
    return problem(
        error.status, error.detail, title=error.title, field=error.field, headers=error.headers
    )


# Refusals of a value the reference data does not know: the input is unprocessable (422).
UNPROCESSABLE = (UnknownMinistry, MinistryCodeTaken, CurrencyMismatch)


def handle_domain_error(error: DomainError) -> Response:
    name = type(error).__name__
    words = _words(name)
    return problem(
        422 if isinstance(error, UNPROCESSABLE) else 409,
        error.message,
        title=" ".join(words).capitalize(),
        type_="urn:panorama:problem:" + "-".join(w.lower() for w in words),
        field=error.field,
    )


def handle_not_found(error: NotFound) -> Response:
    return problem(404, str(error), type_="urn:panorama:problem:not-found")


def handle_version_conflict(error: VersionConflict) -> Response:
    detail = (
        f"the aggregate is no longer at version {error.expected}: reload it and retry"
        if error.actual is None
        else str(error)
    )
    return problem(412, detail, type_="urn:panorama:problem:version-conflict", field="If-Match")


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        return handle_unexpected(error)
    data: dict[str, Any] | None = getattr(error, "data", None)
    errors = validation_errors(data)
    headers = {k: v for k, v in error.get_headers() if k in _KEPT_HEADERS}
    headers.update((data or {}).get("headers") or {})
    unknown = unknown_query_parameters(data)
    if unknown:
        return problem(
            400,
            f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            type_="urn:panorama:problem:unknown-parameter",
            field=unknown[0],
            errors={name: ["Unknown query parameter."] for name in unknown},
            headers=headers,
        )
    if status == 422 and errors:
        first = next(iter(errors))
        detail = f"the request is invalid: {first}: {errors[first][0]}"
        return problem(
            422,
            detail,
            type_="urn:panorama:problem:validation",
            field=first,
            errors=errors,
            headers=headers,
        )
    detail = (data or {}).get("message") or error.description or http.HTTPStatus(status).phrase
    field = next(iter(errors), None)
    if status == 400 and field is not None:
        detail = f"{detail} {field}: {errors[field][0]}".strip()
    return problem(status, detail, field=field, errors=errors or None, headers=headers)


def handle_busy_database(error: Exception) -> Response:
    """The database is busy (a writer holds the lock too long) or unreachable: 503, retry.

    The event store raises eventsourcing's OperationalError, e.g. its SQLite pool's
    ConnectionUnavailableError "Timed out waiting for return of writer" or a lock timeout;
    the read-model connections raise sqlite3's "database is locked" or psycopg's errors.
    """
    if isinstance(error, sqlite3.OperationalError) and not _is_sqlite_busy(error):
        return handle_unexpected(error)
    log.warning("database busy: %s: %s", type(error).__name__, error)
    return problem(
        503,
        "the database is busy; nothing was recorded by this request, retry it",
        type_="urn:panorama:problem:database-busy",
        headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
    )


def _is_sqlite_busy(error: sqlite3.OperationalError) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message


def handle_unexpected(error: Exception) -> Response:
    original = getattr(error, "original_exception", None) or error
    log.error("unexpected error", exc_info=original)
    return problem(500, "the server could not complete the request; it has been logged")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers (after the Api, so ours replace flask-smorest's)."""
    app.register_error_handler(Problem, handle_problem)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(NotFound, handle_not_found)
    app.register_error_handler(VersionConflict, handle_version_conflict)
    app.register_error_handler(HTTPException, handle_http_exception)
    for busy in (StoreOperationalError, sqlite3.OperationalError, psycopg.OperationalError):
        app.register_error_handler(busy, handle_busy_database)
    app.register_error_handler(Exception, handle_unexpected)


class ProblemApi(Api):
    """flask-smorest's Api, documenting every error response as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            content_type = "application/json"
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                content_type = PROBLEM_JSON
            prepare_response(response, self.spec, content_type)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Response:
        return handle_http_exception(error)
