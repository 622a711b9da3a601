"""Catching projections up with the notification log (placeholder until the read models land)."""

from __future__ import annotations

from typing import Any


def install_trigger(services: Any) -> None:
    """Decide how a committed command reaches the projections."""
    return None
