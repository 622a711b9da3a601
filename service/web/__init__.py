"""The pages: server-rendered HTML beside the API, reading the same queries (docs/pages.md).

Each page is one small module of views registered on `web`; `NAV` lists the pages of the
site header, in order. `init_app` wires the locale, the session, the security headers.
"""

from __future__ import annotations

from flask import Blueprint, Flask

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
NAV: list[tuple[str, str]] = [("web.home", mark("Portfolio"))]
NAV += [("web.alerts", mark("Alerts")), ("web.audit", mark("Audit"))]


def init_app(app: Flask) -> None:
    """Register the pages and what they need on `app`."""
    from service.web import i18n, security, session

    i18n.init_app(app)
    security.init_app(app)
    session.init_app(app)
    from service.web import alerts, audit, home, signin  # noqa: F401  (their routes register on `web`)  # noqa: F401

    app.register_blueprint(web)
