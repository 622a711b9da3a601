"""Value rules shared by the aggregates: phases, ratings, amounts and dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from domain.errors import EffectiveDateNotAllowed, InvalidValue, NarrativeRequired

PHASES: tuple[str, ...] = (
    "Cadrage",
    "Conception / Réalisation",
    "Expérimentation",
    "Déploiement",
    "Terminé",
)
PHASE_RANK: dict[str, int] = {phase: rank for rank, phase in enumerate(PHASES)}

# Ordered from best to worst, as in the GMPP delivery confidence assessment.
RATINGS: tuple[str, ...] = ("Green", "Amber/Green", "Amber", "Amber/Red", "Red")
RATING_RANK: dict[str, int] = {rating: rank for rank, rating in enumerate(RATINGS)}

CLOSURE_OUTCOMES: tuple[str, ...] = ("completed", "abandoned")

MAX_AMOUNT = Decimal("1e15")


@dataclass(frozen=True)
class EventProvenance:
    """The fields every event carries besides its payload (a mixin of the event classes)."""

    effective_date: date
    actor: str
    source: str
    narrative: str | None
    correction: bool


@dataclass(frozen=True)
class Provenance:
    """Who records a command's events, from where, why, and when they are true in the world."""

    effective_date: date
    actor: str
    source: str = "api"
    narrative: str | None = None
    correction: bool = False


def canonical_ministry(code: str) -> str:
    """A ministry code as stored and compared: trimmed, upper case (" mj" and "MJ" are MJ)."""
    return code.strip().upper()


def check_phase(phase: str) -> str:
    """Return the phase if it belongs to the panorama vocabulary."""
    if phase not in PHASE_RANK:
        raise InvalidValue(f"unknown phase {phase!r}; expected one of {PHASES}", field="phase")
    return phase


def check_rating(rating: str) -> str:
    """Return the rating if it is one of the five RAG levels."""
    if rating not in RATING_RANK:
        raise InvalidValue(f"unknown rating {rating!r}; expected one of {RATINGS}", field="rating")
    return rating


def check_amount(amount: Decimal, field: str = "amount") -> Decimal:
    """Return a positive, finite amount with at most two decimal places."""
    if not isinstance(amount, Decimal):
        raise InvalidValue(f"{field} must be a Decimal, not {type(amount).__name__}", field=field)
    if not amount.is_finite() or amount <= 0:
        raise InvalidValue(f"{field} must be a positive amount, got {amount}", field=field)
    if amount >= MAX_AMOUNT:
        raise InvalidValue(f"{field} is implausibly large: {amount}", field=field)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        raise InvalidValue(f"{field} has more than two decimal places: {amount}", field=field)
    return amount


def check_effective_date(
    effective_date: date,
    *,
    today: date,
    registered_on: date | None,
    correction: bool,
    narrative: str | None,
) -> None:
    """Refuse future dates, and dates before registration unless flagged as a correction."""
    if effective_date > today:
        raise EffectiveDateNotAllowed(
            f"effective_date {effective_date} is in the future (today is {today})"
        )
    if registered_on is not None and effective_date < registered_on:
        if not correction:
            raise EffectiveDateNotAllowed(
                f"effective_date {effective_date} is before the project's registration "
                f"({registered_on}); flag it as a correction with a narrative"
            )
        require_narrative(narrative, "a correction dated before registration")


def require_narrative(narrative: str | None, what: str) -> str:
    """Return the narrative, or refuse the command when it is missing or blank."""
    if narrative is None or not narrative.strip():
        raise NarrativeRequired(f"{what} needs a narrative")
    return narrative
