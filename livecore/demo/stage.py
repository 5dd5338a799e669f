"""Which stream the demo is live on right now: the publisher sets it, the demo viewers follow it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class DemoStream:
    id: int
    title: str


class Stage:
    def __init__(self, on_live: Callable[[DemoStream], None] | None = None) -> None:
        self.live: DemoStream | None = None
        self._on_live = on_live
        self._last_announced: int | None = None
        self._changed = asyncio.Condition()

    async def go_live(self, stream: DemoStream) -> None:
        """The publisher is connected to `stream`; the first time for a stream, `on_live` hears of it."""
        async with self._changed:
            self.live = stream
            self._changed.notify_all()
        if self._on_live is not None and stream.id != self._last_announced:
            self._last_announced = stream.id
            self._on_live(stream)

    async def go_off_air(self) -> None:
        async with self._changed:
            self.live = None

    async def wait_live(self, other_than: int | None = None) -> DemoStream:
        """The stream the demo is live on, once there is one (and it is not `other_than`, a stream seen ending)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.live is not None and self.live.id != other_than)
            assert self.live is not None
            return self.live
