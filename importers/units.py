"""Read a unit header (`£m`, `M€`, `£m, Presented in 2024/25 Real Prices`) into its parts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from importers.readers import normalise_header

CURRENCY_WORDS: dict[str, str] = {
    "£": "GBP",
    "gbp": "GBP",
    "pounds": "GBP",
    "pound": "GBP",
    "sterling": "GBP",
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "d'euros": "EUR",
    "$": "USD",
    "usd": "USD",
    "dollars": "USD",
}
SCALE_WORDS: dict[str, Decimal] = {
    **dict.fromkeys(("m", "mn", "mio", "million", "millions", "millions de"), Decimal(10) ** 6),
    **dict.fromkeys(("bn", "b", "md", "mds", "mrd", "billion", "billions"), Decimal(10) ** 9),
    **dict.fromkeys(("milliard", "milliards", "milliards de"), Decimal(10) ** 9),
    **dict.fromkeys(("k", "thousand", "thousands", "milliers", "milliers de"), Decimal(10) ** 3),
}
_YEAR = r"(\d{4}(?:\s*[/-]\s*\d{2,4})?)"
_REAL = (
    re.compile(rf"(?:presented in |in )?{_YEAR} (?:real|constant) prices"),
    re.compile(rf"(?:real|constant) prices(?: of| in)?(?: year)? {_YEAR}"),
    re.compile(rf"{_YEAR} prices"),
    re.compile(rf"prix constants(?: de| en)? {_YEAR}"),
    re.compile(rf"(?:euros|pounds) (?:de |of )?{_YEAR}"),
)
_NOMINAL = re.compile(r"\bnominal\b|prix courants|current prices|cash terms|euros courants")
_NOTE = re.compile(r"^(?:incl(?:uding|\.)?|excl(?:uding|\.)?|hors|y compris|ttc|ht)\b")


@dataclass(frozen=True)
class Unit:
    """What a unit says: multiply by `multiplier` to get `currency` units; the price base."""

    text: str
    multiplier: Decimal
    currency: str | None
    price_base: str | None = None


class UnitNotUnderstood(ValueError):
    """The unit text has a part that is neither a scale, a currency nor a price base."""


def price_base(text: str) -> str | None:
    """`nominal`, `real prices of 2024/25`, or None when the text states no price base."""
    folded = normalise_header(text)
    for pattern in _REAL:
        match = pattern.search(folded)
        if match:
            year = re.sub(r"\s+", "", match[1])
            return f"real prices of {year}"
    return "nominal" if _NOMINAL.search(folded) else None


def parse_unit(text: str) -> Unit:
    """The multiplier, currency and price base of a unit such as `£m, 2024/25 real prices`."""
    head, *qualifiers = [p.strip() for p in re.split(r"[,;]", text) if p.strip()] or [""]
    qualifiers += re.findall(r"\(([^()]*)\)", head)
    head = re.sub(r"\([^()]*\)", " ", head)
    base = None
    for qualifier in qualifiers:
        found = price_base(qualifier)
        if found is None and not _NOTE.match(normalise_header(qualifier)):
            raise UnitNotUnderstood(f"{qualifier!r} is neither a price base nor a note")
        base = base or found
    multiplier, currency = _scale_and_currency(head)
    return Unit(text.strip(), multiplier, currency, base)


def _scale_and_currency(head: str) -> tuple[Decimal, str | None]:
    folded = normalise_header(head)
    currency: str | None = None
    for symbol in ("£", "€", "$"):
        if symbol in folded:
            currency = CURRENCY_WORDS[symbol]
            folded = folded.replace(symbol, " ")
    words = []
    for word in folded.split():
        if word in CURRENCY_WORDS:
            if currency not in (None, CURRENCY_WORDS[word]):
                raise UnitNotUnderstood("names two currencies")
            currency = CURRENCY_WORDS[word]
        elif word[-3:] in CURRENCY_WORDS and word[:-3] in SCALE_WORDS:  # MEUR, bnGBP
            currency = CURRENCY_WORDS[word[-3:]]
            words.append(word[:-3])
        elif word not in ("of", "en", "in"):
            words.append(word)
    rest = " ".join(words)
    if rest in SCALE_WORDS:
        return SCALE_WORDS[rest], currency
    if rest == "":
        if currency is None:
            raise UnitNotUnderstood("names no currency and no scale")
        return Decimal(1), currency
    raise UnitNotUnderstood(f"{rest!r} is not a scale (m, bn, k, million, milliard...)")


_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$"}
_EURO_SCALES = {Decimal(10) ** 9: "Md", Decimal(10) ** 6: "M", Decimal(10) ** 3: "k"}
_POUND_SCALES = {Decimal(10) ** 9: "bn", Decimal(10) ** 6: "m", Decimal(10) ** 3: "k"}


def unit_name(currency: str, multiplier: Decimal) -> str:
    """A unit's usual spelling: `M€`, `Md€`, `£m`, `£bn`, `€`; else `EUR x 1000000`."""
    symbol = _SYMBOLS.get(currency)
    if symbol is None:
        return f"{currency} x {multiplier}"
    if multiplier == 1:
        return symbol
    if currency == "EUR" and multiplier in _EURO_SCALES:
        return f"{_EURO_SCALES[multiplier]}{symbol}"
    if multiplier in _POUND_SCALES:
        return f"{symbol}{_POUND_SCALES[multiplier]}"
    return f"{symbol} x {multiplier}"
