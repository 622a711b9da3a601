"""What a page computed for one event position, kept for the next request at that position.

The read model changes only when its position moves, and a read transaction sees one
position (REPEATABLE READ): a result keyed by the position it was read at is valid until
the next event. Per process, least recently used first out, a few entries per kind.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
ENTRIES = 4  # per kind: a list of the portfolio's figures is ~30 MB at 10,000 projects

_lock = threading.Lock()
_kept: dict[str, OrderedDict[Hashable, Any]] = {}


def remembered(kind: str, key: Hashable, position: int, compute: Callable[[], T]) -> T:
    """`compute()` for (`key`, `position`), or what it returned before for them."""
    full = (key, position)
    with _lock:
        entries = _kept.setdefault(kind, OrderedDict())
        if full in entries:
            entries.move_to_end(full)
            found: T = entries[full]
            return found
    value = compute()
    with _lock:
        entries[full] = value
        while len(entries) > ENTRIES:
            entries.popitem(last=False)
    return value


def forget() -> None:
    """Drop everything kept (tests that rebuild a schema under the same positions)."""
    with _lock:
        _kept.clear()
