"""Chat on its way to the bus: queued per node and published in batches, one Redis round trip per batch.

A chat command returns as soon as its event is queued, so a publisher's socket is never held behind Redis
round trips on a busy event loop; one task drains the queue in order, so a user's messages keep their order.
An event the bus refuses is not retried (chat is lossy): its sender is told, through the `on_lost` it was queued
with. On a cluster only the events of rooms on a shard that is down are refused; the batch's others go out.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from livecore.tasks import stop_tasks
from signaling.bus import Bus

log = logging.getLogger("livecore.outbox")

BATCH_EVENTS_MAX = 256  # events per pipeline: big enough to amortise a round trip, small enough to stay fair


class Outbox:
    def __init__(self, bus: Bus, events_max: int) -> None:
        self._bus = bus
        self._events_max = events_max
        self._queue: deque[tuple[int, dict[str, Any], Callable[[], None]]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def offer(self, room_id: int, event: dict[str, Any], on_lost: Callable[[], None]) -> bool:
        """Queue an event; False when `events_max` are already waiting (the node is overloaded)."""
        if len(self._queue) >= self._events_max:
            return False
        self._queue.append((room_id, event, on_lost))
        self._wake.set()
        return True

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain_forever(), name="outbox")

    async def stop(self) -> None:
        """Publish what is queued, then stop."""
        await stop_tasks(self._task)
        await self._drain()

    async def _drain_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._drain()

    async def _drain(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(BATCH_EVENTS_MAX, len(self._queue)))]
            try:
                outcomes: list[int | Exception] = await self._bus.publish_each(
                    [(room_id, event) for room_id, event, _ in batch])
            except Exception as exc:
                outcomes = [exc] * len(batch)
            # Redis is the bus, not the record: chat that cannot be published now is dropped, and said so.
            lost = [(on_lost, outcome) for (_, _, on_lost), outcome in zip(batch, outcomes, strict=True)
                    if isinstance(outcome, Exception)]
            if lost:
                log.warning("could not publish %d of %d queued chat events: %s", len(lost), len(batch), lost[0][1])
            for on_lost, _ in lost:
                on_lost()
