"""Start-up objects are moved out of the collector's reach; garbage is freed, not frozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from app.heap import freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freezing_frees_startup_garbage_and_exempts_what_lives(unfrozen: None) -> None:
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    kept = Node()

    freeze_startup_heap()

    assert gone() is None, "a start-up cycle was frozen instead of freed"
    assert gc.get_freeze_count() > 0
    assert gc.is_tracked(kept)
    assert all(o is not kept for o in gc.get_objects()), "a live object is still collected"
