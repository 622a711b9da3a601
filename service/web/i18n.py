"""Languages and locale-aware formatting of numbers, money, percentages and dates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from babel import numbers
from flask import Flask, request
from flask_babel import Babel, format_date, format_datetime, get_locale, gettext

from service.context import current_services

# The page language (the `lang` query parameter) and the locale that formats for it.
LOCALES = {"fr": "fr_FR", "en": "en_GB"}
DEFAULT_LANG = "fr"
BILLION = Decimal(1_000_000_000)
MILLION = Decimal(1_000_000)


def select_locale() -> str:
    """`lang` from the URL, else the best of Accept-Language, else French."""
    return LOCALES[page_lang()]


def page_lang() -> str:
    """The page's language code: fr or en."""
    asked = request.args.get("lang")
    if asked in LOCALES:
        return asked
    return request.accept_languages.best_match(list(LOCALES)) or DEFAULT_LANG


def init_app(app: Flask) -> None:
    """Flask-Babel with our catalogues (service/translations) and the formatting filters."""
    Babel(app, locale_selector=select_locale)
    for name, func in FILTERS.items():
        app.add_template_filter(func, name)
    app.add_template_global(page_lang, "page_lang")
    app.add_template_global(currency, "currency")


def currency() -> str:
    """The portfolio's currency (one helper, to be wired to issue 12's portfolio currency)."""
    code: str = current_services().settings.currency
    return code


def _locale() -> Any:
    return get_locale()


def number(value: Any, digits: int = 0) -> str:
    """A number with `digits` decimals, grouped as the locale groups them; "—" for None."""
    if value is None:
        return "—"
    quantum = Decimal(1).scaleb(-digits)
    amount = Decimal(value).quantize(quantum, rounding=ROUND_HALF_EVEN)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return numbers.format_decimal(amount, format=pattern, locale=_locale())


def percent(value: Any, digits: int = 1) -> str:
    """A percentage given in percent points (36.4 → "36,4 %" or "36.4%")."""
    if value is None:
        return "—"
    locale = _locale()
    pattern = numbers.parse_pattern(locale.percent_formats[None].pattern)
    pattern.frac_prec = (digits, digits)
    ratio = Decimal(value) / 100
    return str(pattern.apply(ratio, locale, decimal_quantization=True))


def money(value: Any, code: str | None = None) -> str:
    """An amount in the portfolio's currency: billions (one decimal) from ten billion up,
    else millions with two decimals: `1 636,40 M€`, `£542.0bn`."""
    if value is None:
        return "—"
    code = code or currency()
    amount = Decimal(value)
    symbol = numbers.get_currency_symbol(code, locale=_locale())
    if abs(amount) >= 10 * BILLION:
        shown = number(amount / BILLION, 1)
        return gettext("%(symbol)s%(amount)sbn", symbol=symbol, amount=shown)
    shown = number(amount / MILLION, 2)
    return gettext("%(symbol)s%(amount)sm", symbol=symbol, amount=shown)


def years(value: Any) -> str:
    """A duration in years with one decimal."""
    if value is None:
        return "—"
    return gettext("%(years)s years", years=number(value, 1))


def day(value: date | None) -> str:
    """A date in the locale's long form: 31 mars 2019, 31 March 2021."""
    return "—" if value is None else format_date(value, format="long")


def moment(value: datetime | None) -> str:
    """A timestamp in the locale's medium form, in UTC."""
    return "—" if value is None else format_datetime(value, format="medium") + " UTC"


FILTERS: dict[str, Callable[..., str]] = {
    "number": number,
    "percent": percent,
    "money": money,
    "years": years,
    "day": day,
    "moment": moment,
}
