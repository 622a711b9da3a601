"""The one accessor for the Services the Flask app was built around."""

from __future__ import annotations

from flask import Flask, current_app

from service.bootstrap import Services

EXTENSION = "panorama"


def attach(app: Flask, services: Services) -> None:
    """Make `services` the app's services."""
    app.extensions[EXTENSION] = services


def current_services() -> Services:
    """The services of the app handling the current request (or CLI command)."""
    services: Services = current_app.extensions[EXTENSION]
    return services
