"""`/projects`: the projects followed on a date, filtered, sorted and paged."""

from __future__ import annotations

from math import ceil
from typing import Any
from urllib.parse import quote, urlencode

from flask import request, url_for
from marshmallow import fields, validate

import service.web.reads as reads
from domain.values import PHASES, RATINGS
from projections.queries import SORT_KEYS
from service.csv_export import projects_table
from service.errors import Problem
from service.query_schemas import ProjectFilters, project_filter
from service.web.blueprint import mark, web
from service.web.i18n import currency
from service.web.pages import download, render_page
from service.web.state import PageArgs, page_state, url_with

PER_PAGE = 20
PAGE_SIZES = (5, 10, 20, 50, 100)
ORDERS = ("asc", "desc")
# (sort key, header msgid, whether the column holds numbers)
COLUMNS = (
    ("name", mark("Project"), False),
    ("ministry", mark("Ministry"), False),
    ("phase", mark("Phase"), False),
    ("rating", mark("Rating"), False),
    ("cost", mark("Cost"), True),
    ("budget_drift", mark("Budget drift"), True),
    ("schedule_drift", mark("Schedule drift"), True),
    ("start_date", mark("Start"), True),
)
FILTERS = tuple(ProjectFilters().fields)


class ProjectsArgs(ProjectFilters, PageArgs):
    """The projects page's URL: the date, the filters, the sort, the page."""

    sort = fields.String(load_default="name", validate=validate.OneOf(sorted(SORT_KEYS)))
    order = fields.String(load_default="asc", validate=validate.OneOf(ORDERS))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=PER_PAGE, validate=validate.OneOf(PAGE_SIZES))


@web.route("/projects")
def projects() -> Any:
    """The projects followed on `as_of`, as known at `known_at`, as the URL filters them."""
    state = page_state(ProjectsArgs)
    args = state.args
    sort, order, page, per_page = args["sort"], args["order"], args["page"], args["per_page"]
    data = reads.projects(state, project_filter(args), ("-" if order == "desc" else "") + sort)
    items = data["items"]
    if state.format:
        columns, rows = projects_table(items, currency())
        return download(state, "projects", columns, rows, data["reflects"])
    pages = max(1, ceil(len(items) / per_page))
    if page > pages:
        raise Problem(404, f"page {page} is beyond the last page, {pages}", field="page")
    start = (page - 1) * per_page
    return render_page(
        "web/projects.html",
        state=state,
        rows=items[start : start + per_page],
        total=len(items),
        first=start + 1,
        last=min(start + per_page, len(items)),
        page=page,
        pages=pages,
        per_page=per_page,
        page_sizes=PAGE_SIZES,
        pager=pager(page, pages),
        sort=sort,
        order=order,
        columns=COLUMNS,
        sort_link=sort_link,
        clear_url=url_with(**dict.fromkeys(FILTERS), page=None, format=None),
        filtered=any(args.get(name) is not None for name in FILTERS),
        phases=PHASES,
        ratings=RATINGS,
        project_link=project_link,
        **data,
    )


def sort_link(key: str, sort: str, order: str) -> str:
    """The URL sorting by `key`: the other order when it is the current sort, else ascending."""
    flipped = "desc" if key == sort and order == "asc" else "asc"
    return url_with(sort=key, order=flipped, page=None, format=None)


def pager(page: int, pages: int) -> list[int | None]:
    """The page numbers to offer: the first, the last and two around `page` (None: a gap)."""
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    out: list[int | None] = []
    for number in shown:
        if out and number - (out[-1] or 0) > 1:
            out.append(None)
        out.append(number)
    return out


def project_link(project_id: str, as_of: Any = None, anchor: str | None = None) -> str:
    """The project page of `project_id`, on the same date, as known at the same time."""
    given = {**request.args, **({"as_of": as_of.isoformat()} if as_of is not None else {})}
    keep = {k: given[k] for k in ("as_of", "known_at", "lang") if given.get(k)}
    path = url_for("web.projects") + "/" + quote(project_id)
    return path + ("?" + urlencode(keep) if keep else "") + ("#" + anchor if anchor else "")
