"""GET /api/editions: the editions imported into this portfolio, oldest first."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from projections.catchup import position
from projections.editions import editions as imported_editions
from service.auth import require_read
from service.bootstrap import Services

editions = Blueprint(
    "editions", __name__, url_prefix="/api", description="Editions: imported published snapshots."
)


class EditionSchema(Schema):
    ref = fields.String(required=True, metadata={"description": "e.g. 2018-07 or 2020-21"})
    series = fields.String(required=True, metadata={"description": "panorama or gmpp"})
    source = fields.String(required=True, metadata={"description": "the events' source"})
    date = fields.Date(required=True, metadata={"description": "the edition's date"})
    imported_at = fields.DateTime(required=True, metadata={"description": "first recorded"})
    position = fields.Integer(required=True, metadata={"description": "its last event"})
    events = fields.Integer(required=True, metadata={"description": "events it recorded"})
    file = fields.String(allow_none=True, required=True, metadata={"description": "not kept yet"})
    file_sha256 = fields.String(allow_none=True, required=True)


class EditionListSchema(Schema):
    position = fields.Integer(required=True)
    items = fields.List(fields.Nested(EditionSchema), required=True)


def edition_list(services: Services) -> dict[str, Any]:
    """The editions and the read-model position they reflect, read in one transaction."""
    with services.db.transaction(write=False) as tx:
        return {"position": position(tx), "items": imported_editions(tx)}


@editions.route("/editions")
class EditionList(MethodView):
    @editions.response(200, EditionListSchema)
    @require_read()
    def get(self) -> dict[str, Any]:
        """Every imported edition: reference, date, series, import time and position."""
        return edition_list(current_app.extensions["panorama"])
