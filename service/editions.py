"""GET /api/editions: the imported editions; /api/editions/{ref}: published vs computed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields

from projections import editions as edition_model
from projections import queries
from projections.catchup import position
from service.auth import require_read
from service.blueprints import Blueprint
from service.bootstrap import Services
from service.context import current_services
from service.errors import Problem
from service.query_schemas import DecimalString

editions = Blueprint(
    "editions", __name__, url_prefix="/api", description="Editions: imported published snapshots."
)
# The headline figures an edition published, compared with the summary's field of that name.
COUNTS = ("projects", "interministerial_projects")
COMPARED = (
    "projects",
    "interministerial_projects",
    "total_cost",
    "mean_duration_years",
    "mean_schedule_drift_pct",
    "mean_budget_drift_pct",
)


class HeadlineSchema(Schema):
    projects = fields.Integer(allow_none=True)
    interministerial_projects = fields.Integer(allow_none=True)
    total_cost = DecimalString(allow_none=True)  # in currency units
    mean_duration_years = DecimalString(allow_none=True)
    mean_schedule_drift_pct = DecimalString(allow_none=True)
    mean_budget_drift_pct = DecimalString(allow_none=True)
    label = fields.String(allow_none=True, metadata={"description": "as published"})
    total_cost_label = fields.String(allow_none=True)
    source = fields.String(allow_none=True, metadata={"description": "where it was read"})
    confidence = fields.String(allow_none=True)


class EditionSchema(Schema):
    ref = fields.String(required=True, metadata={"description": "e.g. 2018-07 or 2020-21"})
    series = fields.String(required=True, metadata={"description": "panorama or gmpp"})
    source = fields.String(required=True, metadata={"description": "the events' source"})
    date = fields.Date(required=True, metadata={"description": "the edition's date"})
    imported_at = fields.DateTime(required=True, metadata={"description": "first recorded"})
    position = fields.Integer(
        required=True, metadata={"description": "where the import recorded it (its last event)"}
    )
    events = fields.Integer(required=True, metadata={"description": "project events it recorded"})
    file = fields.String(allow_none=True, required=True, metadata={"description": "file name"})
    file_sha256 = fields.String(allow_none=True, required=True)
    currency = fields.String(allow_none=True, metadata={"description": "as the file gives it"})
    unit = fields.String(allow_none=True, metadata={"description": "of its amounts, e.g. M€"})
    price_base = fields.String(
        allow_none=True, metadata={"description": "nominal, real prices of X; null: not stated"}
    )
    listed_projects = fields.Integer(allow_none=True, metadata={"description": "rows it lists"})
    headline = fields.Nested(
        HeadlineSchema, allow_none=True, metadata={"description": "what it published"}
    )


class EditionListSchema(Schema):
    position = fields.Integer(required=True)
    items = fields.List(fields.Nested(EditionSchema), required=True)


class ComparisonSchema(Schema):
    figure = fields.String(required=True)
    # counts are integers, amounts and means decimal strings; difference = computed - published
    published = fields.Raw(allow_none=True, required=True)
    computed = fields.Raw(allow_none=True, required=True)
    difference = fields.Raw(allow_none=True, required=True)


class EditionDetailSchema(EditionSchema):
    as_of = fields.Date(required=True, metadata={"description": "the summary's date"})
    reflects_position = fields.Integer(required=True)
    comparison = fields.List(fields.Nested(ComparisonSchema), required=True)
    summary = fields.Dict(required=True, metadata={"description": "as /api/portfolio/summary"})


class EditionArgs(Schema):
    series = fields.String(metadata={"description": "when two series share the reference"})


def _position(tx: Any) -> int:
    return min(position(tx), position(tx, edition_model.NAME))


def edition_list(services: Services) -> dict[str, Any]:
    """The editions and the read-model position they reflect, read in one transaction."""
    with services.db.transaction(write=False) as tx:
        return {"position": _position(tx), "items": edition_model.editions(tx)}


def edition_detail(services: Services, ref: str, series: str | None) -> dict[str, Any]:
    """One edition, its portfolio summary on its date, and published vs computed figures."""
    with services.db.transaction(write=False) as tx:
        found = edition_model.edition(tx, series, ref)
        if not found:
            raise Problem(404, f"no edition {ref!r} was imported", field="ref")
        if len(found) > 1:
            detail = f"edition {ref!r} exists in several series: give ?series="
            raise Problem(400, detail, field="series")
        edition = found[0]
        summary = queries.summary(tx, edition["date"], None)
        at = _position(tx)
    published = edition["headline"] or {}
    comparison = []
    for figure in COMPARED:
        given, computed = published.get(figure), summary.get(figure)
        difference = None
        if given is not None and computed is not None:
            difference = Decimal(computed) - Decimal(given)
        comparison.append(
            {
                "figure": figure,
                "published": _plain(figure, given),
                "computed": _plain(figure, computed),
                "difference": _plain(figure, difference),
            }
        )
    return {
        **edition,
        "as_of": edition["date"],
        "reflects_position": at,
        "comparison": comparison,
        "summary": {k: v for k, v in summary.items() if k not in ("by_ministry", "by_phase")},
    }


def _plain(figure: str, value: Any) -> int | str | None:
    """Counts as integers, amounts and means as decimal strings with two decimals."""
    if value is None:
        return None
    if figure in COUNTS:
        return int(value)
    return f"{Decimal(value).quantize(Decimal('0.01')):f}"


@editions.route("/editions")
class EditionList(MethodView):
    @editions.response(200, EditionListSchema)
    @require_read()
    def get(self) -> dict[str, Any]:
        """Every imported edition: date, series, file and hash, position, headline figures."""
        return edition_list(current_services())


@editions.route("/editions/<string:ref>")
class EditionDetail(MethodView):
    @editions.arguments(EditionArgs, location="query")
    @editions.response(200, EditionDetailSchema)
    @require_read()
    def get(self, args: dict[str, Any], ref: str) -> dict[str, Any]:
        """One edition: its published headline next to the summary computed on its date."""
        return edition_detail(current_services(), ref, args.get("series"))
