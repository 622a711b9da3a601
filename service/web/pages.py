"""Rendering a page: the layout's context, downloads, and errors as HTML pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import render_template, url_for
from flask_babel import gettext

from service.context import current_services
from service.errors import Problem
from service.web.blueprint import NAV, web
from service.web.downloads import table_response
from service.web.state import PageState, url_with


def render_page(template: str, **context: Any) -> str:
    """Render a page template with what the layout needs."""
    return render_template(template, **context)


def download(
    state: PageState,
    name: str,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    reflects: dict[str, Any],
) -> Any:
    """The page's table in the format its URL asks for (`format=csv|xlsx`)."""
    assert state.format is not None
    meta = {k: v for k, v in reflects.items() if k != "known_at_given"}
    return table_response(state.format, name, header, rows, meta)


@web.app_context_processor
def layout_globals() -> dict[str, Any]:
    settings = current_services().settings
    return {
        "nav": NAV,
        "url_with": url_with,
        "theme_css_url": settings.theme_css_url,
        "asset": lambda path: url_for("web.static", filename=path),
    }


@web.errorhandler(Problem)
def problem_page(problem: Problem) -> tuple[str, int, dict[str, str]]:
    """A refusal on a page is a page: its status, what went wrong, and the way on."""
    body = render_template(
        "web/error.html",
        status=problem.status,
        detail=problem.detail,
        field=problem.field,
        title=gettext("This page cannot be shown"),
    )
    return body, problem.status, dict(problem.headers or {})
