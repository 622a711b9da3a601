"""A page's state, all of it in its URL: `as_of`, `known_at`, `lang` (and a page's own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import request, url_for
from marshmallow import Schema, ValidationError, fields, validate

from service.auth import Policy, enforce
from service.context import current_services
from service.errors import Problem
from service.query_schemas import known_at_field
from service.schemas import IsoDate, Strict
from service.web.i18n import LOCALES

DOWNLOADS = ("csv", "xlsx")


class PageArgs(Strict):
    """The query parameters every page takes; a page with filters extends it."""

    as_of = IsoDate()
    known_at = known_at_field()  # a timestamp, or a date: the end of that day (UTC)
    lang = fields.String(validate=validate.OneOf(sorted(LOCALES)))
    format = fields.String(validate=validate.OneOf(DOWNLOADS))


@dataclass(frozen=True)
class PageState:
    """What a page shows: on `as_of`, as known at `known_at` (None: now), and its own args."""

    as_of: date
    known_at: datetime | None
    format: str | None
    args: dict[str, Any]


def page_state(schema: type[Schema] = PageArgs) -> PageState:
    """Parse the URL (400 naming the parameter); `known_at` needs an auditor or admin."""
    try:
        given = {k: v for k, v in request.args.items() if v != ""}  # a GET form's empty fields
        args: dict[str, Any] = schema().load(given)
    except ValidationError as e:
        name = sorted(e.messages)[0] if isinstance(e.messages, dict) else "query"
        raise Problem(400, f"{name}: {_first(e.messages, name)}", field=name) from None
    enforce(Policy())  # PUBLIC_READ, and known_at for auditors only: as the API
    as_of = args.pop("as_of", None) or today()
    return PageState(as_of, args.pop("known_at", None), args.pop("format", None), args)


def _first(messages: Any, name: str) -> str:
    found = messages.get(name) if isinstance(messages, dict) else messages
    return str(found[0] if isinstance(found, list) else found)


def today() -> date:
    """The portfolio's today (the tests' clock when they give one)."""
    day: date = current_services().portfolio.today()
    return day


def url_with(**changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    args: dict[str, Any] = {**request.args.to_dict(), **changes}
    args = {k: v for k, v in args.items() if v not in (None, "")}
    view_args = dict(request.view_args or {})
    return url_for(request.endpoint or "web.home", **view_args, **args)
