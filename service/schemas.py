"""Marshmallow schemas: parse command bodies, format results. Amounts are decimal strings."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from domain.project import DETAIL_FIELDS
from domain.values import CLOSURE_OUTCOMES, MAX_AMOUNT, PHASES, RATINGS

AMOUNT_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,2})?$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
MULTI_LINE_PATTERN = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"


class Amount(fields.String):
    """A positive amount in euros as a decimal string ("1234.50"): no float, no exponent."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"format": "decimal", "pattern": AMOUNT_PATTERN, "example": "1250000.00"}
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else f"{Decimal(value):.2f}"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if not isinstance(value, str):
            raise ValidationError('Amounts are decimal strings, e.g. "1250000.00".')
        if not re.fullmatch(AMOUNT_PATTERN, value):
            raise ValidationError(
                "Not a positive amount with at most two decimal places and 15 digits."
            )
        try:
            amount = Decimal(value)
        except InvalidOperation:  # unreachable after the pattern, kept as a guard
            raise ValidationError("Not a decimal amount.") from None
        if amount <= 0 or amount >= MAX_AMOUNT:
            raise ValidationError("The amount must be positive.")
        return amount


class IsoDate(fields.Date):
    """A calendar date written YYYY-MM-DD, nothing else."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={"pattern": DATE_PATTERN, "example": "2024-03-31"}, **kwargs)

    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> date:
        if not isinstance(value, str) or not re.fullmatch(DATE_PATTERN, value):
            raise ValidationError("Not a date written YYYY-MM-DD.")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValidationError("Not a valid calendar date.") from None


class Text(fields.String):
    """A bounded string without control characters (a multi-line one may hold \\n and \\t)."""

    def __init__(
        self, max_length: int, *, multiline: bool = False, blank: bool = True, **kwargs: Any
    ) -> None:
        self.multiline = multiline
        self.blank = blank
        pattern = MULTI_LINE_PATTERN if multiline else SINGLE_LINE_PATTERN
        length = validate.Length(min=0 if blank else 1, max=max_length)
        super().__init__(validate=length, metadata={"pattern": pattern}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        allowed = "\n\t" if self.multiline else ""
        for char in text:
            if unicodedata.category(char) in ("Cc", "Cs") and char not in allowed:
                raise ValidationError(f"Control character U+{ord(char):04X} is not allowed.")
        if not self.blank and not text.strip():
            raise ValidationError("Must not be blank.")
        return text


class StrictBoolean(fields.Boolean):
    """JSON true or false only (not 1, "yes" or "on")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a boolean: use true or false.")
        return value


class Strict(Schema):
    """A request body: unknown fields are refused."""

    class Meta:
        unknown = RAISE


def _name() -> Text:
    return Text(300, blank=False, required=True)


def _narrative() -> Text:
    return Text(10_000, multiline=True, allow_none=True, load_default=None)


# -- command bodies --------------------------------------------------------------------------
class CreationSchema(Strict):
    """What every creation command carries besides its payload."""

    effective_date = IsoDate(required=True)
    narrative = _narrative()
    source = Text(100, blank=False, load_default="api")


class CommandSchema(CreationSchema):
    """What every command on an existing aggregate carries besides its payload."""

    correction = StrictBoolean(load_default=False)


class _ProjectDetails(Strict):
    name = Text(300, blank=False)
    ministry_code = Text(50, blank=False)
    ministry_name = Text(300, allow_none=True)
    description = Text(10_000, multiline=True, allow_none=True)
    interministerial = StrictBoolean()
    functional_zone = Text(300, allow_none=True)
    programmes = fields.List(Text(50, blank=False), validate=validate.Length(max=100))
    links = fields.List(Text(2000, blank=False), validate=validate.Length(max=50))
    start_date = IsoDate(allow_none=True)


class ProjectRegistrationSchema(CreationSchema, _ProjectDetails):
    name = _name()
    ministry_code = Text(50, blank=False, required=True)
    interministerial = StrictBoolean(load_default=False)
    phase = fields.String(validate=validate.OneOf(PHASES), load_default=PHASES[0])
    cost = Amount(allow_none=True)
    planned_end = IsoDate(allow_none=True)


class DetailsRevisionSchema(CommandSchema, _ProjectDetails):
    @validates_schema
    def _some_detail(self, data: dict[str, Any], **_: Any) -> None:
        if not any(name in data for name in DETAIL_FIELDS):
            raise ValidationError(f"Revise at least one of {', '.join(DETAIL_FIELDS)}.", "body")


class PhaseTransitionSchema(CommandSchema):
    phase = fields.String(required=True, validate=validate.OneOf(PHASES))


class CostEstimateSchema(CommandSchema):
    amount = Amount(required=True)


class ScheduleEstimateSchema(CommandSchema):
    planned_end = IsoDate(required=True)


class StatusReportSchema(CommandSchema):
    rating = fields.String(required=True, validate=validate.OneOf(RATINGS))


class RebaselineSchema(CommandSchema):
    baseline_cost = Amount(allow_none=True, load_default=None)
    baseline_end = IsoDate(allow_none=True, load_default=None)
    approver = _name()
    reason = Text(10_000, multiline=True, blank=False, required=True)

    @validates_schema
    def _some_baseline(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("baseline_cost") is None and data.get("baseline_end") is None:
            raise ValidationError("Set baseline_cost, baseline_end or both.", "baseline_cost")


class ClosureSchema(CommandSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(CLOSURE_OUTCOMES))


class ProgrammeCreationSchema(CreationSchema):
    name = _name()
    envelope = Amount(required=True)
    currency = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[A-Z]{3}$", error="Not an ISO 4217 code."),
        metadata={"description": "default: the portfolio's; no other is accepted"},
    )


class CallOpeningSchema(CommandSchema):
    call = Text(100, blank=False, required=True)


class AwardSchema(CommandSchema):
    project_id = fields.UUID(required=True)
    amount = Amount(required=True)
    call = Text(100, blank=False, allow_none=True, load_default=None)
    currency = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[A-Z]{3}$", error="Not an ISO 4217 code."),
        metadata={"description": "the amount's currency (default: the programme's)"},
    )
    kind = fields.String(
        load_default="announced",
        validate=validate.OneOf(("announced", "engaged", "disbursed")),
        metadata={"description": "announced (commits the envelope), engaged or disbursed"},
    )


class EnvelopeRevisionSchema(CommandSchema):
    envelope = Amount(required=True)
    reason = Text(2000, blank=False, required=True)


# -- responses -------------------------------------------------------------------------------
class CommandResultSchema(Schema):
    id = fields.UUID(required=True)
    version = fields.Integer(required=True, metadata={"description": "the aggregate's version"})
    position = fields.Integer(
        required=True, metadata={"description": "notification log position (min_position)"}
    )


class AwardResultSchema(CommandResultSchema):
    project_version = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null: the project is unchanged"}
    )


class EventSchema(Schema):
    version = fields.Integer(required=True)
    type = fields.String(required=True)
    effective_date = fields.Date(required=True)
    recorded_at = fields.DateTime(required=True, metadata={"description": "UTC"})
    actor = fields.String(required=True)
    source = fields.String(required=True)
    narrative = fields.String(allow_none=True, required=True)
    correction = fields.Boolean(required=True)
    payload = fields.Dict(keys=fields.String(), required=True)


class StatusSchema(Schema):
    status = fields.String(required=True)
    position = fields.Integer(metadata={"description": "last notification position"})


class ProblemSchema(Schema):
    """An RFC 7807 problem document (application/problem+json)."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    field = fields.String(metadata={"description": "the first offending field or header"})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


EVENT_ENVELOPE = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp"}
    | {"effective_date", "actor", "source", "narrative", "correction"}
)


def plain(value: Any) -> Any:
    """An event payload value as JSON: amounts and ids as strings, dates ISO."""
    if isinstance(value, Decimal):
        return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def event_record(event: Any) -> dict[str, Any]:
    """One entry of a stream's audit trail."""
    attributes = vars(event)
    return {
        "version": event.originator_version,
        "type": type(event).__name__,
        "effective_date": event.effective_date,
        "recorded_at": event.timestamp,
        "actor": event.actor,
        "source": event.source,
        "narrative": event.narrative,
        "correction": event.correction,
        "payload": {k: plain(v) for k, v in attributes.items() if k not in EVENT_ENVELOPE},
    }
