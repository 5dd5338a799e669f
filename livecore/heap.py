"""The node's heap as the garbage collector sees it: what starting leaves behind is frozen, and every collection's
pause is measured.

CPython's collector stops the event loop for a whole collection of the oldest generation, and such a collection
walks every tracked object in the process. A started node holds some 160,000 of them (modules, functions, classes,
schemas) that live as long as the process: walking them took 90 ms of CPU on the benchmark machine, every few
seconds under load, and was the Following feed's p99 (79-280 ms against a p90 of 3 ms). Freezing them once the
node serves takes them out of every later collection; what the node makes afterwards is still collected. An
object frozen here that later becomes garbage in a reference cycle is never freed, so the most this can leak is
the startup heap, once.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram

PAUSE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

# What the last freeze left frozen. gc.get_freeze_count() walks the whole permanent generation: 17 ms of CPU for
# 166,000 objects on the benchmark machine, on every /metrics scrape (once a second in a load test, 10 % of a
# worker's busy time at 500 viewers); only freeze_startup_heap freezes, so its count stays true.
_frozen_objects = 0


def freeze_startup_heap() -> int:
    """Collect what starting left as garbage, then move every object alive now out of the collector's sight;
    how many objects were frozen."""
    global _frozen_objects
    gc.collect()
    gc.freeze()
    _frozen_objects = gc.get_freeze_count()
    return _frozen_objects


def frozen_objects() -> int:
    """How many objects the last freeze_startup_heap took out of the collector's sight (0 before it ran)."""
    return _frozen_objects


class GcMetrics:
    """`livecore_gc_pause_seconds`: how long each collection held the event loop, by generation; and
    `livecore_gc_frozen_objects`: how many objects are out of the collector's sight."""

    def __init__(self, registry: CollectorRegistry) -> None:
        Gauge("livecore_gc_frozen_objects", "Objects frozen out of the garbage collector (what starting the node made)",
              registry=registry).set_function(frozen_objects)
        self.pauses = Histogram("livecore_gc_pause_seconds", "How long each garbage collection stopped the node, "
                                "by generation (2: the full collection)", ["generation"], registry=registry,
                                buckets=PAUSE_BUCKETS_S)
        self._started = 0.0

    def start(self) -> None:
        gc.callbacks.append(self._observe)

    def stop(self) -> None:
        if self._observe in gc.callbacks:
            gc.callbacks.remove(self._observe)

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.labels(generation=str(info["generation"])).observe(time.perf_counter() - self._started)
