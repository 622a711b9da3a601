"""A project's facts, declared once: the aggregate, the read model and its rows derive from them.

`ProjectDetails` are the identity details a registration sets and a revision changes;
`ProjectFacts` adds the figures the events change. `FACTS` describes each one (its name,
its kind of value, whether it may be None, and the read-model column that stores it), read
from these annotations, so that adding a fact is one line here plus the rule that sets it.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

Kind = Literal["text", "bool", "date", "money", "list"]
KINDS: dict[type, Kind] = {str: "text", bool: "bool", date: "date", Decimal: "money", list: "list"}


@dataclass(frozen=True)
class Stored:
    """Where the read model keeps a fact: a column of its own, or the `extra` JSON column."""

    column: str | None


IN_EXTRA = Stored(None)


def column(name: str) -> Stored:
    """The fact is kept in a column whose name differs from the fact's."""
    return Stored(name)


class ProjectDetails:
    """A project's identity details (set at registration, changed by a revision)."""

    name: str
    ministry_code: str
    ministry_name: str | None
    description: Annotated[str | None, IN_EXTRA]
    interministerial: bool
    functional_zone: str | None
    programmes: Annotated[list[str], IN_EXTRA]
    links: Annotated[list[str], IN_EXTRA]
    start_date: date | None


class ProjectFacts(ProjectDetails):
    """Everything a project is at one moment: its details and its figures."""

    phase: str
    baseline_cost: Decimal | None
    current_cost: Annotated[Decimal | None, column("cost")]
    baseline_end: date | None
    planned_end: date | None
    rating: str | None
    funding_received: Decimal
    in_portfolio: bool
    figures_withheld: bool
    closed: bool
    outcome: str | None
    registered_on: date


@dataclass(frozen=True)
class Fact:
    """One declared fact: its name, kind of value, optionality and read-model column."""

    name: str
    kind: Kind
    optional: bool
    column: str | None  # None: kept in the read model's `extra` JSON column


def fact_of(name: str, hint: Any) -> Fact:
    """Describe one annotation (`Annotated[T | None, Stored(...)]` or a plain type)."""
    stored = Stored(name)
    if typing.get_origin(hint) is Annotated:
        hint, *marks = typing.get_args(hint)
        stored = next((m for m in marks if isinstance(m, Stored)), stored)
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        (hint,) = [a for a in args if a is not type(None)]
    base = typing.get_origin(hint) or hint
    if base not in KINDS:
        raise TypeError(f"fact {name!r} has a type the read model cannot store: {hint!r}")
    return Fact(name, KINDS[base], optional, stored.column)


def facts_of(cls: type) -> tuple[Fact, ...]:
    """The facts a class declares, in declaration order (base classes first)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return tuple(fact_of(name, hint) for name, hint in hints.items())


DETAIL_FIELDS: tuple[str, ...] = tuple(f.name for f in facts_of(ProjectDetails))
FACTS: tuple[Fact, ...] = facts_of(ProjectFacts)
