"""What an import checks against the reference data: the portfolio's currency, the ministries.

A file in another currency than the portfolio's is refused whole (GMPP pounds never enter a
euro portfolio). A ministry code the reference lacks is registered as a new ministry, with
a warning: a published file is data to understand (docs/importing.md, "Ministries").
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.application import Portfolio
from domain.ministry import MINISTRIES_ID, Ministries
from domain.values import canonical_ministry
from importers.errors import ImportRejected
from importers.model import Edition

ACTOR = "import"


def check_currency(portfolio: Portfolio, editions: Sequence[Edition]) -> None:
    """Refuse, naming the file, an edition whose amounts are not in the portfolio's currency."""
    currency = portfolio.currency()
    for edition in editions:
        if currency is not None and edition.currency != currency:
            raise ImportRejected(
                edition.file,
                reason=(
                    f"is in {edition.currency} but this portfolio is in {currency}: import it "
                    f"into a portfolio created with PORTFOLIO_CURRENCY={edition.currency} "
                    "(its own DATABASE_URL or DATABASE_SCHEMA); amounts in two currencies "
                    "are never added together"
                ),
            )


def unknown_ministries(
    portfolio: Portfolio, editions: Sequence[Edition]
) -> tuple[Ministries | None, list[str]]:
    """The reference with the editions' unknown ministry codes registered (pending), and a
    warning for each; (None, []) when every code is known."""
    found: dict[str, tuple[str, str]] = {}  # code -> (name, where first seen)
    for edition in editions:
        for project in edition.projects.values():
            raw = project.details.get("ministry_code")
            if not isinstance(raw, str) or not raw.strip():
                continue
            code = canonical_ministry(raw)
            name = project.details.get("ministry_name") or code
            found.setdefault(code, (str(name), f"{edition.file}, {edition.record} {project.row}"))
    reference = portfolio.ministries()
    unknown = {c: v for c, v in found.items() if reference is None or reference.stable(c) is None}
    if not unknown:
        return None, []
    if reference is None:
        reference = Ministries.start(actor=ACTOR, source="import")
    else:
        fresh: object = portfolio.repository.get(MINISTRIES_ID)  # not the shared cached copy
        assert isinstance(fresh, Ministries)
        reference = fresh
    warnings = []
    for code, (name, where) in sorted(unknown.items()):
        reference.register(code, name, actor=ACTOR, source="import")
        warnings.append(
            f"ministry {code!r} ({where}) is not in the ministries reference: registered as a "
            "new ministry; if it is another code of a known one, see docs/importing.md"
        )
    return reference, warnings
