"""The manager forms of a project page: their fields, the values typed, the errors beside them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from flask import request, url_for
from flask_babel import gettext
from marshmallow import Schema

from domain.application import CommandResult, Portfolio
from domain.values import PHASE_RANK, PHASES, RATINGS, Provenance
from service.schemas import (
    CostEstimateSchema,
    PhaseTransitionSchema,
    ScheduleEstimateSchema,
    StatusReportSchema,
)
from service.web.blueprint import mark
from service.web.forms import new_key
from service.web.i18n import page_lang

COMMON = ("effective_date", "narrative")
RATING_LABELS = {
    "Green": mark("Green"),
    "Amber/Green": mark("Amber/Green"),
    "Amber": mark("Amber"),
    "Amber/Red": mark("Amber/Red"),
    "Red": mark("Red"),
}


# Runs a form's command: (portfolio, project, provenance, expected version, parsed body).
Run = Callable[[Portfolio, UUID, Provenance, int | None, dict[str, Any]], CommandResult]


@dataclass(frozen=True)
class Command:
    """One form: the Portfolio command it runs, the API's schema, its own fields."""

    name: str
    run: Run
    schema: type[Schema]
    fields: tuple[str, ...]
    title: str
    done: str


COMMANDS = {
    c.name: c
    for c in (
        Command(
            "cost",
            lambda p, pid, prov, v, body: p.reestimate_cost(
                pid, body["amount"], provenance=prov, expected_version=v
            ),
            CostEstimateSchema,
            ("amount",),
            mark("Re-estimate the cost"),
            mark("The new cost is recorded."),
        ),
        Command(
            "schedule",
            lambda p, pid, prov, v, body: p.reestimate_schedule(
                pid, body["planned_end"], provenance=prov, expected_version=v
            ),
            ScheduleEstimateSchema,
            ("planned_end",),
            mark("Re-estimate the planned end"),
            mark("The new planned end is recorded."),
        ),
        Command(
            "phase",
            lambda p, pid, prov, v, body: p.transition_phase(
                pid, body["phase"], provenance=prov, expected_version=v
            ),
            PhaseTransitionSchema,
            ("phase",),
            mark("Change phase"),
            mark("The new phase is recorded."),
        ),
        Command(
            "rating",
            lambda p, pid, prov, v, body: p.report_status(
                pid, body["rating"], provenance=prov, expected_version=v
            ),
            StatusReportSchema,
            ("rating",),
            mark("Report a rating"),
            mark("The rating is recorded."),
        ),
    )
}


@dataclass
class Field:
    """One field as rendered: its id, label, kind, value, options, hint and error."""

    id: str
    name: str
    label: str
    kind: str
    value: str
    options: list[tuple[str, str]] = field(default_factory=list)
    hint: str | None = None
    error: str | None = None


@dataclass
class Form:
    """A form as rendered, with what it was rendered from (version, idempotency key)."""

    name: str
    title: str
    action: str
    version: int
    key: str
    fields: list[Field]

    @property
    def errors(self) -> list[Field]:
        return [f for f in self.fields if f.error]


def defaults(name: str, figures: dict[str, Any], today: str) -> dict[str, str]:
    """What a fresh form shows: today's date, the current phase's next one, the rating."""
    phase = figures.get("phase") or PHASES[0]
    following = [p for p in PHASES if PHASE_RANK[p] > PHASE_RANK.get(phase, 0)]
    return {
        "effective_date": today,
        "narrative": "",
        "amount": "",
        "planned_end": "",
        "phase": following[0] if following else phase,
        "rating": figures.get("rating") or "",
    }


def build(
    name: str,
    project_id: str,
    version: int,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
) -> Form:
    """The form `name` with `values` typed and `errors` beside their fields (a fresh key)."""
    command = COMMANDS[name]
    errors = errors or {}
    fields = [_field(name, f, values.get(f, ""), errors.get(f)) for f in (*command.fields, *COMMON)]
    action = url_for("web.project_command", project_id=project_id, form=name, lang=page_lang())
    return Form(name, gettext(command.title), action, version, new_key(), fields)


def _field(form: str, name: str, value: str, error: str | None) -> Field:
    fid = f"{form}-{name.replace('_', '-')}"
    if name == "amount":
        hint = gettext("In %(currency)s, e.g. 1250000.00", currency=_currency())
        return Field(fid, name, gettext("New total cost"), "text", value, hint=hint, error=error)
    if name == "planned_end":
        return Field(fid, name, gettext("New planned end"), "date", value, error=error)
    if name == "phase":
        return Field(
            fid, name, gettext("New phase"), "select", value, [(p, p) for p in PHASES], error=error
        )
    if name == "rating":
        options = [(r, gettext(RATING_LABELS[r])) for r in RATINGS]
        hint = gettext("A Red rating needs a narrative.")
        return Field(fid, name, gettext("Rating"), "select", value, options, hint, error)
    if name == "effective_date":
        hint = gettext("The date the change is true from (not in the future).")
        return Field(fid, name, gettext("Effective date"), "date", value, hint=hint, error=error)
    hint = gettext("Why: shown in the project's timeline.")
    return Field(fid, name, gettext("Narrative"), "textarea", value, hint=hint, error=error)


def _currency() -> str:
    from service.web.i18n import currency

    return currency()


def typed() -> dict[str, str]:
    """The values the user typed in the posted form (every field of every form)."""
    names = {f for c in COMMANDS.values() for f in (*c.fields, *COMMON)}
    return {n: request.form.get(n, "") for n in names}
