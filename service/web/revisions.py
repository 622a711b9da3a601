"""Figures revised since a time: what was known at `known_at` against what is known now.

A page computed as known at `known_at` marks each figure whose value differs from the one
known now (for the same as_of), with the revision responsible: the first event recorded
after `known_at` that changed that figure. Any page can use it with its own `read`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The figures as known at a time (None: now); None when nothing was known then.
Read = Callable[[datetime | None], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Revision:
    """One revised figure: its value then and now, and the event that first changed it."""

    key: str
    then: Any
    now: Any
    event: Mapping[str, Any] | None


def revised(
    read: Read,
    known_at: datetime,
    later_events: Sequence[Mapping[str, Any]],
    keys: Iterable[str],
) -> dict[str, Revision]:
    """The figures among `keys` whose value known at `known_at` is not the value known now.

    `later_events` are the candidate revisions (each with its `recorded_at`); those recorded
    at or before `known_at` are ignored. A figure no event explains has `event` None.
    """
    then = read(known_at) or {}
    now = read(None) or {}
    pending = [k for k in keys if then.get(k) != now.get(k)]
    found: dict[str, Revision] = {}
    later = sorted(
        (e for e in later_events if e["recorded_at"] > known_at),
        key=lambda e: (e["recorded_at"], e.get("position", 0)),
    )
    for event in later:
        if not pending:
            break
        after = read(event["recorded_at"]) or {}
        for key in [k for k in pending if after.get(k) != then.get(k)]:
            found[key] = Revision(key, then.get(key), now.get(key), event)
            pending.remove(key)
    for key in pending:
        found[key] = Revision(key, then.get(key), now.get(key), None)
    return found
