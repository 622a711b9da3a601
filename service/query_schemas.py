"""Marshmallow schemas of the query API: arguments and the read models' JSON shapes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from domain.values import PHASES, RATINGS
from projections.queries import (
    CHANGE_KINDS,
    CHANGES_LIMIT,
    CHANGES_MAX_LIMIT,
    SORT_KEYS,
    ChangesCursor,
    ProjectFilter,
)
from service.schemas import DATE_PATTERN, IsoDate, Strict, plain

SORTS = sorted(SORT_KEYS) + sorted(f"-{k}" for k in SORT_KEYS)
DIALECTS = ("rfc4180", "excel-fr")
KNOWN_AT_DOC = (
    "transaction time: only what was recorded by then; an ISO 8601 timestamp (UTC without an"
    " offset) or a bare date YYYY-MM-DD, meaning the end of that day in UTC"
    " (2019-03-31 is 2019-03-31T23:59:59.999999Z)"
)


class DecimalString(fields.String):
    """A signed decimal written as a string (amounts in euros, percentages)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={"format": "decimal", "example": "12.50"}, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        text: str = plain(Decimal(value))
        return text


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 timestamp read as UTC (without an offset: UTC, or refused if `offset_required`).

    The one parser of timestamps in query strings: a time that leaves years 1 to 9999 once
    moved to UTC (9999-12-31T23:59:59-14:00) is a validation error, not an OverflowError.
    """

    def __init__(
        self, *, offset_required: bool = False, dates_end_day: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(default_timezone=None if offset_required else UTC, **kwargs)
        self.dates_end_day = dates_end_day

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if self.dates_end_day and isinstance(value, str) and re.fullmatch(DATE_PATTERN, value):
            try:
                return datetime.combine(date.fromisoformat(value), time.max, UTC)
            except ValueError:
                raise ValidationError("Not a valid calendar date.") from None
        parsed: datetime = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError(
                "Out of range: in UTC it falls outside years 1 to 9999."
            ) from None


def known_at_field() -> UtcDateTime:
    """The `known_at` parameter: a timestamp, or a bare date meaning the end of that day (UTC)."""
    return UtcDateTime(dates_end_day=True, metadata={"description": KNOWN_AT_DOC})


class CodeChoice(fields.String):
    """One of a fixed vocabulary, matched whatever its case ("déploiement" is "Déploiement")."""

    def __init__(self, choices: tuple[str, ...], **kwargs: Any) -> None:
        self.choices = {c.casefold(): c for c in choices}
        names = ", ".join(choices)
        super().__init__(metadata={"description": f"one of {names}, in any case"}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        found = self.choices.get(text.strip().casefold())
        if found is None:
            raise ValidationError(f"Must be one of: {', '.join(self.choices.values())}.")
        return found


class QueryArgs(Strict):
    """Query parameters: an unknown one is refused (400 naming it), never silently ignored."""


class OutputArgs(QueryArgs):
    """How an answer is written: JSON (default), CSV in a dialect, or XLSX."""

    format = fields.String(
        validate=validate.OneOf(["json", "csv", "xlsx"]),
        metadata={"description": "also: Accept: text/csv, or the XLSX media type"},
    )
    dialect = fields.String(
        validate=validate.OneOf(DIALECTS),
        metadata={
            "description": "CSV dialect: rfc4180 (default: UTF-8, comma, decimal point) or"
            " excel-fr (UTF-8 with BOM, semicolon, decimal comma: Excel in a French locale)"
        },
    )


class TimeArgs(OutputArgs):
    """The two time axes, read-your-writes, and the output format."""

    as_of = IsoDate()  # valid time: the date the answer is true on
    known_at = known_at_field()
    min_position = fields.Integer(
        validate=validate.Range(min=0, max=2**62),
        metadata={"description": "wait (bounded) until the read model has reached it"},
    )


class HistoryArgs(TimeArgs):
    full = fields.Boolean(
        load_default=False,
        metadata={"description": "also give the whole state after each step"},
    )


DRIFT_LIMIT = Decimal(1_000_000)


def _bounded(value: Decimal) -> None:
    if abs(value) > DRIFT_LIMIT:
        raise ValidationError(f"Out of range: a drift is within ±{DRIFT_LIMIT} points.")


def _drift(bound: str) -> fields.Decimal:
    return fields.Decimal(
        allow_nan=False,
        validate=_bounded,
        metadata={"description": f"{bound} drift kept, in percentage points (±1,000,000)"},
    )


class ProjectFilters(Strict):
    """The filters of a project list (the API's and the projects page's)."""

    ministry = fields.String(
        validate=validate.Length(max=50), metadata={"description": "a code, in any case"}
    )
    phase = CodeChoice(PHASES)
    rating = CodeChoice(RATINGS)
    q = fields.String(validate=validate.Length(max=200))
    budget_drift_min = _drift("lowest")
    budget_drift_max = _drift("highest")
    schedule_drift_min = _drift("lowest")
    schedule_drift_max = _drift("highest")

    @validates_schema
    def _ranges(self, data: dict[str, Any], **_: Any) -> None:
        for drift in ("budget_drift", "schedule_drift"):
            low, high = data.get(f"{drift}_min"), data.get(f"{drift}_max")
            if low is not None and high is not None and low > high:
                raise ValidationError(
                    f"'{drift}_min' must not be above '{drift}_max'", field_name=f"{drift}_min"
                )


def project_filter(args: dict[str, Any]) -> ProjectFilter:
    """The query layer's filter from parsed `ProjectFilters` arguments."""
    return ProjectFilter(**{k: args.get(k) for k in ProjectFilters().fields})


class ListArgs(ProjectFilters, TimeArgs):
    sort = fields.String(load_default="name", validate=validate.OneOf(SORTS))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    include_departed = fields.Boolean(load_default=False)


class CursorField(fields.String):
    """The `next` cursor of a previous changes answer (opaque; it names its kind)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 2000:
            raise ValidationError("Not a cursor of this API: too long.")
        try:
            return ChangesCursor.decode(text)
        except ValueError:
            raise ValidationError(
                "Not a cursor of this API: pass a `next` value as given."
            ) from None


class ChangesArgs(OutputArgs):
    from_ = IsoDate(data_key="from", required=True)
    to = IsoDate(required=True)
    known_at = known_at_field()
    min_position = fields.Integer(validate=validate.Range(min=0, max=2**62))
    limit = fields.Integer(
        load_default=CHANGES_LIMIT,
        validate=validate.Range(min=1, max=CHANGES_MAX_LIMIT),
        metadata={
            "description": f"changes per kind in the answer (1 to {CHANGES_MAX_LIMIT}, default"
            f" {CHANGES_LIMIT}); `counts` gives every kind's total. CSV and XLSX hold them all"
        },
    )
    kind = fields.String(
        validate=validate.OneOf(CHANGE_KINDS),
        metadata={"description": "only this kind's list (the others are left out)"},
    )
    cursor = CursorField(
        metadata={
            "description": "the next page of one kind: a value of `next` from the previous"
            " answer, with the same from, to and known_at; the answer then holds that kind only"
        },
    )

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        if data["from_"] > data["to"]:
            raise ValidationError("'from' must not be after 'to'", field_name="from")
        cursor, kind = data.get("cursor"), data.get("kind")
        if cursor is not None and kind is not None and cursor.kind != kind:
            raise ValidationError(
                f"this cursor pages {cursor.kind}, not {kind}", field_name="cursor"
            )


class Currency(Schema):
    """The currency of every amount of an answer: the portfolio's one currency."""

    currency = fields.String(metadata={"description": "ISO 4217 code of every amount"})


class Reflects(Currency):
    """What every answer states it reflects."""

    as_of = fields.Date()
    known_at = fields.DateTime()
    position = fields.Integer()


class ProjectStateSchema(Schema):
    id = fields.String()
    version = fields.Integer()
    valid_from = fields.Date(allow_none=True)
    name = fields.String()
    ministry_code = fields.String(metadata={"description": "the ministry's stable code"})
    published_ministry_code = fields.String(
        metadata={"description": "the code as recorded (as the edition published it)"}
    )
    ministry_name = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    interministerial = fields.Boolean()
    functional_zone = fields.String(allow_none=True)
    programmes = fields.List(fields.String())
    links = fields.List(fields.String())
    start_date = fields.Date(allow_none=True)
    registered_on = fields.Date()
    phase = fields.String()
    cost = DecimalString(allow_none=True)
    baseline_cost = DecimalString(allow_none=True)
    budget_drift_pct = DecimalString(allow_none=True)
    planned_end = fields.Date(allow_none=True)
    baseline_end = fields.Date(allow_none=True)
    schedule_drift_pct = DecimalString(allow_none=True)
    duration_years = DecimalString(allow_none=True)
    cv_pct = DecimalString(allow_none=True)
    sv_pct = DecimalString(allow_none=True)
    rating = fields.String(allow_none=True)
    funding_received = DecimalString()
    in_portfolio = fields.Boolean()
    figures_withheld = fields.Boolean()
    closed = fields.Boolean()
    outcome = fields.String(allow_none=True)


class ProjectAnswerSchema(ProjectStateSchema, Reflects):
    pass


class ProjectListSchema(Reflects):
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    items = fields.List(fields.Nested(ProjectStateSchema))


class FiguresSchema(Schema):
    projects = fields.Integer()
    interministerial_projects = fields.Integer()
    costed_projects = fields.Integer()
    total_cost = DecimalString()
    total_cost_engaged = DecimalString()
    mean_duration_years = DecimalString(allow_none=True)
    mean_schedule_drift_pct = DecimalString(allow_none=True)
    median_schedule_drift_pct = DecimalString(allow_none=True)
    weighted_schedule_drift_pct = DecimalString(allow_none=True)
    mean_budget_drift_pct = DecimalString(allow_none=True)
    median_budget_drift_pct = DecimalString(allow_none=True)
    weighted_budget_drift_pct = DecimalString(allow_none=True)


class MinistryFiguresSchema(FiguresSchema):
    name = fields.String(allow_none=True, metadata={"description": "the ministry's current name"})


class SummarySchema(FiguresSchema, Reflects):
    by_ministry = fields.Dict(
        keys=fields.String(metadata={"description": "stable ministry code"}),
        values=fields.Nested(MinistryFiguresSchema),
    )
    by_phase = fields.Dict(keys=fields.String(), values=fields.Nested(FiguresSchema))


class ReadEventSchema(Schema):
    project_id = fields.String()
    version = fields.Integer()
    position = fields.Integer()
    type = fields.String()
    effective_date = fields.Date()
    recorded_at = fields.DateTime()
    actor = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    narrative = fields.String(allow_none=True)
    correction = fields.Boolean()
    payload = fields.Function(lambda e: plain(e.get("payload")))


class ChangeSchema(Schema):
    id = fields.String()
    name = fields.String()
    ministry_code = fields.String()
    from_ = fields.Function(lambda c: plain(c.get("from")), data_key="from")
    to = fields.Function(lambda c: plain(c.get("to")))
    events = fields.List(fields.Nested(ReadEventSchema))


class ChangeCountsSchema(Schema):
    """How many changes of each kind there are in all."""

    entered = fields.Integer()
    left = fields.Integer()
    phase_changes = fields.Integer()
    cost_changes = fields.Integer()
    schedule_changes = fields.Integer()


class ChangeCursorsSchema(Schema):
    """Each list's next-page cursor (null at its end; only the lists in the answer)."""

    entered = fields.String(allow_none=True)
    left = fields.String(allow_none=True)
    phase_changes = fields.String(allow_none=True)
    cost_changes = fields.String(allow_none=True)
    schedule_changes = fields.String(allow_none=True)


def _page(description: str) -> fields.List:
    return fields.List(fields.Nested(ChangeSchema), metadata={"description": description})


class ChangesSchema(Currency):
    from_ = fields.Date(data_key="from")
    to = fields.Date()
    known_at = fields.DateTime()
    position = fields.Integer()
    limit = fields.Integer(metadata={"description": "changes per kind at most in this answer"})
    counts = fields.Nested(
        ChangeCountsSchema, metadata={"description": "how many changes of each kind in all"}
    )
    next = fields.Nested(
        ChangeCursorsSchema,
        metadata={"description": "each list's next-page cursor (pass it as `cursor`), or null"},
    )
    entered = _page(
        "projects followed on `to` and not on `from`, by name; events: Registered,"
        " LeftPortfolio, RejoinedPortfolio in the window"
    )
    left = _page("projects followed on `from` and not on `to`; events as for `entered`")
    phase_changes = _page("phase on `from` -> on `to`; events: PhaseTransitioned, Registered")
    cost_changes = _page(
        "current cost moves (none while figures are withheld on either date); events:"
        " CostReestimated, Registered"
    )
    schedule_changes = _page(
        "planned end moves (none while withheld on either date); events: ScheduleReestimated,"
        " Registered"
    )


class FieldChangeSchema(Schema):
    field = fields.String()
    old = fields.Function(lambda c: plain(c.get("old")))
    new = fields.Function(lambda c: plain(c.get("new")))


class HistoryStepSchema(Schema):
    event = fields.Nested(ReadEventSchema)
    changes = fields.List(
        fields.Nested(FieldChangeSchema),
        metadata={"description": "the fields this step changed: field, old value, new value"},
    )
    state = fields.Nested(
        ProjectStateSchema,
        allow_none=True,
        metadata={"description": "the whole state after the step (only with full=true)"},
    )


class HistorySchema(Currency):
    id = fields.String()
    position = fields.Integer()
    steps = fields.List(fields.Nested(HistoryStepSchema))
