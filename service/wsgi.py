"""The WSGI entry point for gunicorn (`gunicorn service.wsgi:app`): the only app built at import."""

from __future__ import annotations

from service.app import create_app

app = create_app()
