"""The startup heap is frozen out of later collections, and collection pauses are measured."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from livecore.heap import GcPauses, freeze_startup_heap


class Node:
    """Something a started node keeps for its lifetime (a tracked object)."""


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process is not a node: give its objects back to the collector


def test_objects_alive_at_startup_leave_the_collectors_sight(unfrozen: None) -> None:
    kept = Node()
    assert any(o is kept for o in gc.get_objects())
    frozen = freeze_startup_heap()
    assert frozen >= 1
    assert not any(o is kept for o in gc.get_objects())
    made_later = Node()
    assert any(o is made_later for o in gc.get_objects())  # what the node makes afterwards is still collected


def test_each_collection_pause_is_observed_by_generation() -> None:
    registry = CollectorRegistry()
    pauses = GcPauses(registry)
    pauses.start()
    try:
        gc.collect(2)
        gc.collect(0)
    finally:
        pauses.stop()
    count = {g: registry.get_sample_value("livecore_gc_pause_seconds_count", {"generation": g}) for g in "02"}
    assert count["2"] is not None and count["2"] >= 1
    assert count["0"] is not None and count["0"] >= 1
    gc.collect(2)  # stopped: no longer observed
    assert registry.get_sample_value("livecore_gc_pause_seconds_count", {"generation": "2"}) == count["2"]
