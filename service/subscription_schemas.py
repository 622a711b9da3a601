"""Marshmallow schemas of the subscriptions and alerts API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from domain.subscription import CHANNELS, COMPARATORS, METRICS, SCOPES
from service.query_schemas import UtcDateTime
from service.schemas import Strict


def _text(n: int, **kwargs: object) -> fields.String:
    return fields.String(validate=validate.Length(max=n), **kwargs)  # type: ignore[arg-type]


class RuleFields(Strict):
    metric = fields.String(validate=validate.OneOf(METRICS))
    comparator = fields.String(validate=validate.OneOf(COMPARATORS), allow_none=True)
    threshold = _text(
        40, metadata={"description": "a decimal (a rating level for rating_at_or_worse)"}
    )
    clear_threshold = _text(
        40, allow_none=True, metadata={"description": "hysteresis: the value that clears it"}
    )
    scope = fields.String(validate=validate.OneOf(SCOPES))
    scope_value = _text(
        64, allow_none=True, metadata={"description": "a project id or a ministry code"}
    )
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    url = _text(2000, allow_none=True, metadata={"description": "the webhook URL"})
    email = _text(254, allow_none=True, metadata={"description": "the e-mail address"})
    secret = _text(200, allow_none=True, load_only=True, metadata={"description": "webhook"})
    digest = fields.Boolean(
        metadata={"description": "also sum its alerts up in the owner's daily digest"}
    )


class SubscriptionCreateSchema(RuleFields):
    metric = fields.String(required=True, validate=validate.OneOf(METRICS))
    threshold = _text(40, required=True)
    scope = fields.String(required=True, validate=validate.OneOf(SCOPES))
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))


class SubscriptionPatchSchema(RuleFields):
    pass


class RuleSchema(Schema):
    metric = fields.String(required=True)
    comparator = fields.String(required=True)
    threshold = fields.String(required=True)
    clear_threshold = fields.String(required=True, allow_none=True)
    scope = fields.String(required=True)
    scope_value = fields.String(required=True, allow_none=True)


class ChannelSchema(Schema):
    kind = fields.String(required=True)
    target = fields.String(required=True)


class SubscriptionSchema(Schema):
    id = fields.UUID(required=True)
    owner = fields.String(required=True)
    version = fields.Integer(required=True)
    rule = fields.Nested(RuleSchema, required=True)
    channel = fields.Nested(ChannelSchema, required=True)
    digest = fields.Boolean(required=True)


class SubscriptionCreatedSchema(SubscriptionSchema):
    position = fields.Integer(required=True)
    secret = fields.String(
        allow_none=True, metadata={"description": "the webhook secret: shown only here, once"}
    )


class AlertArgs(Strict):
    subscription = fields.UUID()
    project = fields.UUID()
    from_ = UtcDateTime(offset_required=True, data_key="from")
    to = UtcDateTime(offset_required=True)
    min_position = fields.Integer(
        validate=validate.Range(min=0, max=2**62),
        metadata={"description": "wait (bounded) until the alerts reflect this position"},
    )


class CauseSchema(Schema):
    position = fields.Integer(required=True)
    stream = fields.String(required=True)
    version = fields.Integer(required=True)
    type = fields.String(required=True)


class AlertSchema(Schema):
    id = fields.String(required=True)
    subscription_id = fields.String(required=True)
    subject = fields.String(required=True)
    kind = fields.String(required=True)
    metric = fields.String(required=True)
    value_before = fields.String(required=True, allow_none=True)
    value_after = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    cause = fields.Nested(CauseSchema, required=True)
    delivery = fields.String(required=True, allow_none=True)


class DeliverySchema(Schema):
    alert_id = fields.String(required=True)
    attempt = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    status = fields.String(required=True)
    http_status = fields.Integer(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)
    next_attempt_at = fields.DateTime(required=True, allow_none=True)


class RedeliveredSchema(Schema):
    alert_id = fields.String(required=True)
    status = fields.String(required=True)
