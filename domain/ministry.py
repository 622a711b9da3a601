"""Ministries as reference data: one event-sourced stream of stable codes, names and aliases.

The whole reference is one aggregate (one stream, a fixed id), so that a code can never be
claimed by two ministries: two admins adding the same alias concurrently conflict on the
stream's version. MINDEF and MAr are the codes of one ministry, the Armées (stable MINARM).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import DomainError, InvalidValue
from domain.values import canonical_ministry

MINISTRIES_ID = uuid5(UUID("8a0d5a5e-3f3b-4a43-9c1e-6a9f2d0c7b21"), "reference:ministries")
MAX_CODE = 50


class UnknownMinistry(DomainError):
    """A ministry code that the reference does not know (an admin may register it)."""

    field = "ministry_code"


class MinistryCodeTaken(DomainError):
    """A code (stable or alias) already names a ministry."""

    field = "code"


@dataclass(frozen=True)
class Alias:
    """A code a ministry was published under, and when (either end may be unknown)."""

    code: str
    valid_from: date | None = None
    valid_to: date | None = None


@dataclass(frozen=True)
class Ministry:
    """One ministry: its stable code, current name, former names and aliases."""

    code: str
    name: str
    aliases: tuple[Alias, ...] = ()
    names: tuple[tuple[str, date | None], ...] = ()  # (name, used from), oldest first


def check_code(code: str, field: str = "code") -> str:
    """A ministry code, canonical (trimmed, upper case), 1 to 50 characters."""
    if not isinstance(code, str) or not code.strip():
        raise InvalidValue(f"{field} must not be blank", field=field)
    canonical = canonical_ministry(code)
    if len(canonical) > MAX_CODE:
        raise InvalidValue(f"{field} is longer than {MAX_CODE} characters", field=field)
    return canonical


class Ministries(Aggregate):
    """The ministries reference: who is who, under which codes, since when."""

    class Event(Aggregate.Event):
        actor: str
        source: str

    class Created(Aggregate.Created):
        actor: str
        source: str

    class Registered(Event):
        code: str
        name: str

    class Renamed(Event):
        code: str
        name: str
        valid_from: date | None

    class AliasAdded(Event):
        code: str
        alias: str
        valid_from: date | None
        valid_to: date | None

    def __init__(self, **_: Any) -> None:  # state is set by Created.apply
        pass

    ministries: dict[str, Ministry]
    codes: dict[str, str]  # every code (stable or alias) -> the stable code

    @classmethod
    def start(cls, *, actor: str, source: str) -> Ministries:
        """The empty reference (its stream has a fixed id)."""
        return cls._create(cls.Created, id=MINISTRIES_ID, actor=actor, source=source)

    # -- reads -------------------------------------------------------------------------------
    def stable(self, code: str) -> str | None:
        """The stable code of the ministry `code` names (stable or alias), else None."""
        return self.codes.get(canonical_ministry(code))

    def resolve(self, code: str) -> Ministry:
        """The ministry `code` names, or UnknownMinistry."""
        stable = self.stable(code)
        if stable is None:
            raise UnknownMinistry(
                f"unknown ministry code {canonical_ministry(code)!r}: an admin registers it "
                "with POST /api/ministries (GET /api/ministries lists the known ones)"
            )
        return self.ministries[stable]

    # -- commands ----------------------------------------------------------------------------
    def register(
        self, code: str, name: str, *, actor: str, source: str, aliases: tuple[Alias, ...] = ()
    ) -> None:
        """Register a ministry under a new stable code, with the aliases it was seen under."""
        code = check_code(code)
        if not isinstance(name, str) or not name.strip():
            raise InvalidValue("name must not be blank", field="name")
        self._free(code, "code")
        seen = {code}
        for alias in aliases:
            if check_code(alias.code, "aliases") in seen:
                raise MinistryCodeTaken(f"alias {alias.code!r} is given twice", field="aliases")
            self._free(check_code(alias.code, "aliases"), "aliases")
            seen.add(check_code(alias.code, "aliases"))
        self.trigger_event(
            self.Registered, code=code, name=name.strip(), actor=actor, source=source
        )
        for alias in aliases:
            self.add_alias(code, alias, actor=actor, source=source)

    def rename(
        self, code: str, name: str, *, valid_from: date | None, actor: str, source: str
    ) -> None:
        """Give a ministry a new current name (the former ones are kept)."""
        ministry = self._own(code)
        if not isinstance(name, str) or not name.strip():
            raise InvalidValue("name must not be blank", field="name")
        if name.strip() == ministry.name:
            raise InvalidValue(f"{ministry.code} is already named {name.strip()!r}", field="name")
        self.trigger_event(
            self.Renamed,
            code=ministry.code,
            name=name.strip(),
            valid_from=valid_from,
            actor=actor,
            source=source,
        )

    def add_alias(self, code: str, alias: Alias, *, actor: str, source: str) -> None:
        """Record that a ministry was also published under `alias` (from/to dates optional)."""
        ministry = self._own(code)
        alias_code = check_code(alias.code, "alias")
        self._free(alias_code, "alias")
        if alias.valid_from and alias.valid_to and alias.valid_to < alias.valid_from:
            raise InvalidValue("valid_to is before valid_from", field="valid_to")
        self.trigger_event(
            self.AliasAdded,
            code=ministry.code,
            alias=alias_code,
            valid_from=alias.valid_from,
            valid_to=alias.valid_to,
            actor=actor,
            source=source,
        )

    def _own(self, code: str) -> Ministry:
        stable = check_code(code)
        if stable not in self.ministries:
            known = self.codes.get(stable)
            hint = f" (it is an alias of {known})" if known else ""
            raise UnknownMinistry(f"no ministry has the stable code {stable!r}{hint}", field="code")
        return self.ministries[stable]

    def _free(self, code: str, field: str) -> None:
        if code in self.codes:
            raise MinistryCodeTaken(
                f"{code!r} already names the ministry {self.codes[code]}", field=field
            )


def _created_apply(self: Ministries.Created, reference: Any) -> None:
    reference.ministries = {}
    reference.codes = {}


def _event_apply(self: Ministries.Event, reference: Any) -> None:
    if isinstance(self, Ministries.Registered):
        reference.ministries[self.code] = Ministry(self.code, self.name, (), ((self.name, None),))
        reference.codes[self.code] = self.code
    elif isinstance(self, Ministries.Renamed):
        old = reference.ministries[self.code]
        reference.ministries[self.code] = Ministry(
            old.code, self.name, old.aliases, (*old.names, (self.name, self.valid_from))
        )
    elif isinstance(self, Ministries.AliasAdded):
        old = reference.ministries[self.code]
        alias = Alias(self.alias, self.valid_from, self.valid_to)
        reference.ministries[self.code] = Ministry(
            old.code, old.name, (*old.aliases, alias), old.names
        )
        reference.codes[self.alias] = self.code


Ministries.Created.apply = _created_apply  # type: ignore[method-assign,assignment]
Ministries.Event.apply = _event_apply  # type: ignore[method-assign,assignment]


SEED_FILE = Path(__file__).resolve().parent / "reference" / "ministries.json"


def load_seed(path: Path = SEED_FILE) -> list[Ministry]:
    """The ministries of a seed file (the package's by default), aliases with their dates."""
    document = json.loads(path.read_text(encoding="utf-8"))

    def day(value: str | None) -> date | None:
        return date.fromisoformat(value) if value else None

    return [
        Ministry(
            code=check_code(entry["code"]),
            name=entry["name"],
            aliases=tuple(
                Alias(check_code(a["code"], "aliases"), day(a.get("from")), day(a.get("to")))
                for a in entry.get("aliases", [])
            ),
        )
        for entry in document["ministries"]
    ]
