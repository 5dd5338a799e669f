"""The startup heap is frozen out of later collections, and collection pauses are measured."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from livenode import Servers
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from servenode import Serve, clean_env

from livecore.heap import GcMetrics, freeze_startup_heap


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
    pauses = GcMetrics(registry)
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


async def test_a_serving_node_has_frozen_what_its_start_made(servers: Servers, http: aiohttp.ClientSession,
                                                              tmp_path: Path) -> None:
    node = Serve(tmp_path / "node", env=clean_env(LIVECORE_DATABASE_URL=servers.database_url,
                                                  LIVECORE_REDIS_URL=servers.redis_url, LIVECORE_SEED_DEMO="no"))
    try:
        await node.wait_ready(http)
        async with http.get(f"{node.url}/metrics") as response:
            families = {f.name: f for f in text_string_to_metric_families(await response.text())}
        frozen = families["livecore_gc_frozen_objects"].samples[0].value
        assert frozen > 50_000  # modules, functions, classes, schemas: a started node holds some 160,000
    finally:
        node.end()
