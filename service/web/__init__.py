"""The pages: server-rendered HTML beside the API, reading the same queries (docs/pages.md).

Each page is one small module of views registered on `web`; `NAV` lists the pages of the
site header, in order. `init_app` wires the locale, the session, the security headers.
"""

from __future__ import annotations

from flask import Flask

from service.web.blueprint import web


def init_app(app: Flask) -> None:
    """Register the pages and what they need on `app`."""
    from service.web import compress, i18n, security, session

    i18n.init_app(app)
    security.init_app(app)
    session.init_app(app)
    compress.init_app(app)
    # their routes register on `web`
    from service.web import (  # noqa: F401
        alerts,
        audit,
        compare,
        home,
        programmes,
        project,
        project_commands,
        projects,
        signin,
    )

    app.register_blueprint(web)
