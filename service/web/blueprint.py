"""The pages' blueprint and the header's navigation (imported by every page module)."""

from __future__ import annotations

from flask import Blueprint

web = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)


def mark(msgid: str) -> str:
    """Mark a message for the catalogues; it is translated where it is shown."""
    return msgid


# (endpoint, label msgid) of the header's navigation; a new page appends itself here.
NAV: list[tuple[str, str]] = [
    ("web.home", mark("Portfolio")),
    ("web.projects", mark("Projects")),
    ("web.compare", mark("Compare")),
    ("web.programmes", mark("Funding")),
    ("web.alerts", mark("Alerts")),
    ("web.audit", mark("Audit")),
]
