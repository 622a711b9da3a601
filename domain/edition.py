"""The Edition aggregate: one imported publication, its source file and its headline figures."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import InvalidValue, NothingChanged
from domain.values import EventProvenance as Provenance
from domain.values import check_effective_date

# Fixed forever: an edition's id is derived from its series and reference.
NAMESPACE = uuid.UUID("2b0f8f4e-7c55-5a3e-8d0a-65646974696f")
HEADLINE_FIGURES: tuple[str, ...] = (
    "projects",
    "interministerial_projects",
    "total_cost",
    "mean_duration_years",
    "mean_schedule_drift_pct",
    "mean_budget_drift_pct",
)
HEADLINE_NOTES: tuple[str, ...] = ("label", "total_cost_label", "source", "confidence")


def edition_id(series: str, ref: str) -> UUID:
    """The deterministic id of edition `ref` of a series (uuid5)."""
    return uuid.uuid5(NAMESPACE, f"{series}:{ref}")


def check_headline(headline: dict[str, Any]) -> dict[str, Any]:
    """A headline's known figures (Decimal or int) and notes (text); refuse anything else."""
    checked: dict[str, Any] = {}
    for name, value in headline.items():
        if value is None:
            continue
        if name in HEADLINE_FIGURES and isinstance(value, int | Decimal):
            checked[name] = value
        elif name in HEADLINE_NOTES and isinstance(value, str):
            checked[name] = value
        else:
            raise InvalidValue(f"headline {name!r} is not a published figure", field="headline")
    return checked


class Edition(Aggregate):
    """A published snapshot of a series as imported: date, file, hash, unit, headline."""

    class Event(Aggregate.Event, Provenance):
        pass

    class Imported(Aggregate.Created, Provenance):
        series: str
        ref: str
        file: str
        file_sha256: str
        currency: str
        unit: str | None
        price_base: str | None
        projects: int
        headline: dict[str, Any] | None

    class HeadlinePublished(Event):
        file: str
        headline: dict[str, Any]

    def __init__(self, **_: Any) -> None:  # state is set by Imported.apply
        pass

    series: str
    ref: str
    edition_date: date
    file: str
    file_sha256: str
    currency: str
    unit: str | None
    price_base: str | None
    projects: int
    headline: dict[str, Any] | None

    @classmethod
    def record_import(
        cls,
        *,
        series: str,
        ref: str,
        file: str,
        file_sha256: str,
        currency: str,
        unit: str | None,
        price_base: str | None,
        projects: int,
        headline: dict[str, Any] | None,
        effective_date: date,
        actor: str,
        source: str,
        today: date,
    ) -> Edition:
        """Record that edition `ref` of `series` was imported from `file`."""
        if len(file_sha256) != 64:
            raise InvalidValue("file_sha256 is not a SHA-256 hex digest", field="file_sha256")
        if len(currency) != 3 or not currency.isupper():
            raise InvalidValue("currency is not an ISO 4217 code", field="currency")
        check_effective_date(
            effective_date, today=today, registered_on=None, correction=False, narrative=None
        )
        return cls._create(
            cls.Imported,
            id=edition_id(series, ref),
            series=series,
            ref=ref,
            file=file,
            file_sha256=file_sha256,
            currency=currency,
            unit=unit,
            price_base=price_base,
            projects=projects,
            headline=check_headline(headline) if headline else None,
            effective_date=effective_date,
            actor=actor,
            source=source,
            narrative=None,
            correction=False,
        )

    def publish_headline(self, headline: dict[str, Any], *, file: str, actor: str) -> None:
        """Record the headline figures the edition published (given after its import)."""
        checked = check_headline(headline)
        if not checked or checked == self.headline:
            raise NothingChanged("the edition already has these headline figures")
        self.trigger_event(
            self.HeadlinePublished,
            file=file,
            headline=checked,
            effective_date=self.edition_date,
            actor=actor,
            source=f"{self.series}:{self.ref}",
            narrative=None,
            correction=False,
        )


def _imported_apply(self: Edition.Imported, edition: Any) -> None:
    for name in ("series", "ref", "file", "file_sha256", "currency", "unit", "price_base"):
        setattr(edition, name, getattr(self, name))
    edition.projects = self.projects
    edition.headline = self.headline
    edition.edition_date = self.effective_date


def _event_apply(self: Edition.Event, edition: Any) -> None:
    if isinstance(self, Edition.HeadlinePublished):
        edition.headline = self.headline


Edition.Imported.apply = _imported_apply  # type: ignore[method-assign,assignment]
Edition.Event.apply = _event_apply  # type: ignore[method-assign,assignment]
