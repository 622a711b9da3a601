"""The boot heap frozen by the web and Celery workers: out of the collector's walk, while
what the process makes afterwards is still collected (no leak of later cyclic garbage)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from service.heap import freeze_boot_heap


class Node:
    """A cyclic structure only the cyclic collector can free."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def frozen() -> Iterator[None]:
    freeze_boot_heap()
    try:
        yield
    finally:
        gc.unfreeze()


def test_boot_objects_leave_the_collectors_walk(frozen: None) -> None:
    assert gc.get_freeze_count() > 1000  # this process's modules and test objects, at least
    before = gc.get_freeze_count()
    gc.collect()
    assert gc.get_freeze_count() == before  # a full collection does not walk them again


def test_garbage_made_after_boot_is_still_collected(frozen: None) -> None:
    node = Node()
    ref = weakref.ref(node)
    del node
    gc.collect()
    assert ref() is None
