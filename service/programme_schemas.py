"""Marshmallow schemas of the funding programme reads: every amount is a Money."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from service.query_schemas import DecimalString, UtcDateTime
from service.schemas import IsoDate, Strict

KINDS = ("envelope", "announced", "engaged", "disbursed", "opened", "savings")


class ProgrammeArgs(Strict):
    as_of = IsoDate()
    known_at = UtcDateTime(
        metadata={"description": "transaction time: only what was recorded by then"}
    )


class MoneySchema(Schema):
    amount = DecimalString(required=True)
    currency = fields.String(required=True, metadata={"example": "EUR"})
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))


def _money() -> fields.Nested:
    return fields.Nested(MoneySchema, allow_none=True, required=True)


class EnvelopeHistorySchema(Schema):
    effective_date = fields.Date(required=True)
    envelope = _money()
    reason = fields.String(required=True)
    source = fields.String(required=True)
    recorded_at = fields.DateTime(required=True)


class PublishedSchema(Schema):
    laureates = fields.Integer(allow_none=True, required=True)
    total = _money()
    effective_date = fields.Date(required=True)
    source = fields.String(required=True)


class ItemisedSchema(Schema):
    laureates = fields.Integer(required=True)
    with_amount = fields.Integer(required=True)
    total = _money()


class NotItemisedSchema(Schema):
    laureates = fields.Integer(allow_none=True, required=True)
    total = _money()


class CallFiguresSchema(Schema):
    call = fields.String(required=True)
    opened_on = fields.Date(required=True)
    published = fields.Nested(PublishedSchema, allow_none=True, required=True)
    itemised = fields.Nested(ItemisedSchema, required=True)
    not_itemised = fields.Nested(NotItemisedSchema, required=True)


class ProgrammeMinistryFiguresSchema(Schema):
    ministry_code = fields.String(allow_none=True, required=True)
    laureates = fields.Integer(required=True)
    announced = _money()


class FigureSchema(Schema):
    label = fields.String(required=True)
    kind = fields.String(required=True)
    laureates = fields.Integer(allow_none=True, required=True)
    total = _money()
    effective_date = fields.Date(required=True)
    dated = fields.Boolean(required=True, metadata={"description": "false: date inferred"})
    confidence = fields.String(allow_none=True, required=True)
    scope = fields.String(required=True)
    source = fields.String(required=True)
    notes = fields.String(allow_none=True, required=True)


class ProgrammeSummarySchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    currency = fields.String(required=True)
    opened_on = fields.Date(required=True)
    envelope = _money()
    committed = _money()
    available = _money()
    commitment_share_pct = DecimalString(allow_none=True, required=True)
    engaged = _money()
    disbursed = _money()
    laureates = fields.Integer(required=True)


class ProgrammeListSchema(Schema):
    as_of = fields.Date(required=True)
    known_at = fields.DateTime(allow_none=True, required=True)
    items = fields.List(fields.Nested(ProgrammeSummarySchema), required=True)


class AwardLineSchema(Schema):
    project_id = fields.UUID(required=True)
    amount = DecimalString(required=True)
    call = fields.String(allow_none=True, required=True)


class ProgrammeViewSchema(ProgrammeSummarySchema):
    version = fields.Integer(required=True)
    as_of = fields.Date(required=True)
    known_at = fields.DateTime(allow_none=True, required=True)
    envelope_history = fields.List(fields.Nested(EnvelopeHistorySchema), required=True)
    calls = fields.List(fields.Nested(CallFiguresSchema), required=True)
    by_ministry = fields.List(fields.Nested(ProgrammeMinistryFiguresSchema), required=True)
    published_figures = fields.List(fields.Nested(FigureSchema), required=True)
    awards = fields.List(fields.Nested(AwardLineSchema), required=True)


class LaureateSchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(allow_none=True, required=True)
    call = fields.String(allow_none=True, required=True)
    project_id = fields.UUID(allow_none=True, required=True)
    in_portfolio = fields.Boolean(required=True)
    ministry = fields.String(allow_none=True, required=True)
    ministry_code = fields.String(allow_none=True, required=True)
    announced = _money()
    engaged = _money()
    disbursed = _money()
    savings = _money()
    confidence = fields.String(allow_none=True, required=True)
    effective_date = fields.Date(allow_none=True, required=True)
    dated = fields.Boolean(required=True)
    source = fields.String(allow_none=True, required=True)
    notes = fields.String(allow_none=True, required=True)


class CallSchema(CallFiguresSchema):
    programme_id = fields.UUID(required=True)
    programme = fields.String(required=True)
    currency = fields.String(required=True)
    as_of = fields.Date(required=True)
    known_at = fields.DateTime(allow_none=True, required=True)
    laureates = fields.List(fields.Nested(LaureateSchema), required=True)
