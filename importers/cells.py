"""Parse one cell: numbers (decimal comma or point), dates (ISO, dd/mm/yyyy, Excel), flags."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from importers.readers import Cell, is_blank, normalise_header

CENT = Decimal("0.01")
EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 is 1900-01-01 (Excel's 1900 leap-year bug included)
MAX_EXCEL_SERIAL = 2958465  # 9999-12-31

FRENCH_MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        (
            ("janvier", "janv"),
            ("fevrier", "fevr", "fev"),
            ("mars",),
            ("avril", "avr"),
            ("mai",),
            ("juin",),
            ("juillet", "juil"),
            ("aout",),
            ("septembre", "sept"),
            ("octobre", "oct"),
            ("novembre", "nov"),
            ("decembre", "dec"),
        ),
        start=1,
    )
    for name in names
}

TRUE_WORDS = frozenset({"oui", "o", "yes", "y", "true", "vrai", "1"})
FALSE_WORDS = frozenset({"non", "n", "no", "false", "faux", "0"})

_SPACES = re.compile(r"[\s\u00a0\u202f\u2009]+")
_GROUPED = re.compile(r"\d{1,3}(?:X\d{3})+")


class CellError(ValueError):
    """A cell's value cannot be read as the expected kind; the message is the reason."""


def text(cell: Cell) -> str | None:
    """The cell as stripped text with Unix line ends, None when blank."""
    if is_blank(cell):
        return None
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return re.sub(r"[ \t]*\r+\n?", "\n", str(cell)).strip()


def one_line(cell: Cell) -> str | None:
    """The cell as text with every run of whitespace collapsed to one space."""
    value = text(cell)
    return None if value is None else _SPACES.sub(" ", value)


def parse_decimal(cell: Cell, *, decimal_comma: bool) -> Decimal:
    """A number: `12.3`, `12,3` (when decimal_comma), `1 234,5`, `£1,234.56`, `-3%`."""
    if isinstance(cell, bool) or isinstance(cell, date):
        raise CellError("is not a number")
    if isinstance(cell, int):
        return Decimal(cell)
    if isinstance(cell, float):
        return Decimal(repr(cell))
    raw = text(cell)
    if raw is None:
        raise CellError("is empty")
    value = _SPACES.sub("", raw).lstrip("£€$").rstrip("%€").lstrip("£€$")
    sign = ""
    if value[:1] in "+-":
        sign, value = value[0], value[1:]
    value = value.lstrip("£€$")
    if not re.fullmatch(r"[\d.,]+", value) or not re.search(r"\d", value):
        raise CellError("is not a number")
    value = _plain_digits(value, decimal_comma)
    try:
        return Decimal(sign + value)
    except InvalidOperation:
        raise CellError("is not a number") from None


def _plain_digits(value: str, decimal_comma: bool) -> str:
    commas, points = value.count(","), value.count(".")
    if commas and points:
        decimal = "," if value.rfind(",") > value.rfind(".") else "."
    elif commas:
        decimal = "," if decimal_comma else ""
    elif points:
        decimal = "." if points == 1 or decimal_comma is False else ""
    else:
        return value
    thousands = {",", "."} - {decimal}
    whole, _, fraction = value.rpartition(decimal) if decimal else (value, "", "")
    if decimal and whole == "" and not fraction:
        raise CellError("is not a number")
    for sep in thousands:
        if sep in whole:
            if not _GROUPED.fullmatch(whole.replace(sep, "X")):
                raise CellError("is not a number")
            whole = whole.replace(sep, "")
    if any(sep in fraction or sep in whole for sep in ",."):
        raise CellError("is not a number")
    return f"{whole or '0'}.{fraction}" if decimal else whole


def parse_date(cell: Cell) -> date:
    """A date: a date cell, an Excel serial, `yyyy-mm-dd[ time]`, `dd/mm/yyyy`, `yyyy-mm`."""
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    if isinstance(cell, bool):
        raise CellError("is not a date")
    if isinstance(cell, int | float):
        return _excel_serial(float(cell))
    raw = text(cell)
    if raw is None:
        raise CellError("is empty")
    if re.fullmatch(r"\d{4,5}(\.\d+)?", raw):
        return _excel_serial(float(raw))
    patterns = (
        (r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?", (1, 2, 3)),
        (r"(\d{1,2})/(\d{1,2})/(\d{4})(?: \d{1,2}:\d{2}(?::\d{2})?)?", (3, 2, 1)),
        (r"(\d{1,2})\.(\d{1,2})\.(\d{4})", (3, 2, 1)),
        (r"(\d{4})-(\d{1,2})", (1, 2, 0)),
    )
    for pattern, (y, m, d) in patterns:
        match = re.fullmatch(pattern, raw)
        if match:
            try:
                return date(int(match[y]), int(match[m]), int(match[d]) if d else 1)
            except ValueError:
                raise CellError("is not a valid date") from None
    month = re.fullmatch(r"([a-z]+)\.? (\d{4})", normalise_header(raw))
    if month and month[1] in FRENCH_MONTHS:
        return date(int(month[2]), FRENCH_MONTHS[month[1]], 1)
    raise CellError("is not a date (expected yyyy-mm-dd, dd/mm/yyyy or an Excel serial number)")


def _excel_serial(serial: float) -> date:
    if not 1 <= serial <= MAX_EXCEL_SERIAL:
        raise CellError("is not a date (out of the range of Excel serial numbers)")
    return EXCEL_EPOCH + timedelta(days=int(serial))


def parse_bool(cell: Cell) -> bool:
    """A yes/no flag: Oui/Non, Yes/No, True/False, 1/0 (any case)."""
    raw = text(cell)
    word = normalise_header(raw) if raw is not None else ""
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CellError("is not a yes/no value (expected Oui or Non)")


def money(amount: Decimal, multiplier: int | Decimal, what: str = "amount") -> Decimal:
    """Scale an amount to currency units, exactly, as an integer or to the cent."""
    value = amount * multiplier
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    if value != value.quantize(Decimal("0.01")):
        raise CellError(f"has more precision than a cent once converted ({what})")
    return value.quantize(Decimal("0.01"))


@dataclass
class Rounding:
    """Amounts of one file rounded half-even to the cent: how many, and the largest change.

    When `strict`, an amount with more precision than a cent is refused instead."""

    file: str
    strict: bool = False
    cells: int = 0
    largest: Decimal = Decimal(0)
    where: str = ""

    def money(self, amount: Decimal, multiplier: int | Decimal, where: str) -> Decimal:
        """`amount * multiplier` in currency units, to the cent (rounded unless strict)."""
        if self.strict:
            return money(amount, multiplier)
        value = amount * multiplier
        rounded = value.quantize(CENT, rounding=ROUND_HALF_EVEN)
        if rounded != value:
            self.cells += 1
            adjustment = abs(rounded - value)
            if adjustment > self.largest:
                self.largest, self.where = adjustment, where
        if rounded == rounded.to_integral_value():
            return rounded.quantize(Decimal(1))
        return rounded

    def warning(self, currency: str) -> str | None:
        """The file's one warning about rounding, None when nothing was rounded."""
        if not self.cells:
            return None
        return (
            f"{self.file}: {self.cells} amount(s) had more precision than a cent and were "
            f"rounded half-even to the cent (largest adjustment: {self.largest.normalize():f} "
            f"{currency}, {self.where})"
        )
