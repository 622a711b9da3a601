"""The portfolio's one currency, recorded once in the event store so it cannot silently change."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import DomainError, InvalidValue

CURRENCY_ID = uuid5(UUID("8a0d5a5e-3f3b-4a43-9c1e-6a9f2d0c7b21"), "reference:currency")
_ISO_4217 = re.compile(r"^[A-Z]{3}$")


class CurrencyMismatch(DomainError):
    """An amount, a file or a setting in another currency than the portfolio's."""

    field = "currency"


def check_currency(code: str, field: str = "currency") -> str:
    """An ISO 4217 code, upper case (EUR, GBP)."""
    canonical = code.strip().upper() if isinstance(code, str) else ""
    if not _ISO_4217.match(canonical):
        raise InvalidValue(
            f"{field} must be an ISO 4217 code such as EUR, not {code!r}", field=field
        )
    return canonical


class PortfolioCurrency(Aggregate):
    """The currency of every amount of this portfolio (one stream, a fixed id)."""

    class Configured(Aggregate.Created):
        currency: str
        actor: str

    def __init__(self, **_: Any) -> None:  # state is set by Configured.apply
        pass

    currency: str

    @classmethod
    def configure(cls, currency: str, *, actor: str) -> PortfolioCurrency:
        """Record the portfolio's currency (only ever once)."""
        return cls._create(
            cls.Configured, id=CURRENCY_ID, currency=check_currency(currency), actor=actor
        )


def _configured_apply(self: PortfolioCurrency.Configured, aggregate: Any) -> None:
    aggregate.currency = self.currency


PortfolioCurrency.Configured.apply = _configured_apply  # type: ignore[method-assign,assignment]
