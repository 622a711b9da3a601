"""A project's state as a pure fold of its events, in effective-date order.

The aggregate folds its events in recording order (what is known now); a read model folds
them by effective date (what was true on a date). Both use the domain's own `apply`, so
the rules of how an event changes a project live in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from domain.project import Project
from domain.project_facts import FACTS, ProjectFacts

LIST_FACTS: tuple[str, ...] = tuple(f.name for f in FACTS if f.kind == "list")


class ProjectState(ProjectFacts):
    """What a project looked like on a date, as known at a time (the facts of ProjectFacts)."""

    # the queries resolve the code through the ministries reference (not a fact of the project)
    stable_ministry_code: str | None = None
    ministry_reference_name: str | None = None

    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self.version = 0
        self.valid_from: date | None = None

    def copy(self) -> ProjectState:
        clone = object.__new__(type(self))
        attributes = clone.__dict__
        attributes.update(self.__dict__)
        for name in LIST_FACTS:
            attributes[name] = list(attributes[name])
        return clone

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProjectState) and self.facts() == other.facts()

    def __repr__(self) -> str:
        return f"ProjectState({self.facts()!r})"

    def facts(self) -> dict[str, Any]:
        """Every attribute that a query can see, excluding bookkeeping."""
        return {k: v for k, v in vars(self).items() if k not in _BOOKKEEPING}

    @property
    def ministry(self) -> str:
        """The ministry's stable code (the code as recorded when the reference lacks it)."""
        return self.stable_ministry_code or self.ministry_code


_BOOKKEEPING = frozenset(
    {"version", "valid_from", "stable_ministry_code", "ministry_reference_name"}
)


def sort_date(event: Project.Event | Project.Registered, registered_on: date) -> date:
    """The date an event applies from: never before the project's registration."""
    return max(event.effective_date, registered_on)


def evolve(state: ProjectState | None, event: Any) -> ProjectState:
    """Return the state after `event` (the input state is not modified)."""
    if isinstance(event, Project.Registered):
        new = ProjectState(str(event.originator_id))
    elif state is None:
        raise ValueError(f"{type(event).__name__} before the project's registration")
    else:
        new = state.copy()
    event.apply(new)
    new.version = max(new.version, event.originator_version)
    return new


def fold(
    events: Iterable[Any], *, as_of: date | None = None, known_at: Any = None
) -> ProjectState | None:
    """The oracle: fold a project's events selected by `as_of` and `known_at`."""
    selected = [e for e in events if known_at is None or e.timestamp <= known_at]
    registration = next((e for e in selected if isinstance(e, Project.Registered)), None)
    if registration is None:
        return None
    registered_on = registration.effective_date
    if as_of is not None and as_of < registered_on:
        return None
    ordered = sorted(selected, key=lambda e: (sort_date(e, registered_on), e.originator_version))
    state: ProjectState | None = None
    for event in ordered:
        if as_of is not None and sort_date(event, registered_on) > as_of:
            break
        state = evolve(state, event)
        state.valid_from = sort_date(event, registered_on)
    return state
