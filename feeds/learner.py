"""The online learner: every node reads the shared engagement stream and teaches its ranker each event, so an
update reaches ranking within a second or so of the event being recorded, on every node."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as redis
from redis.exceptions import RedisError

from feeds.catalogue import Catalogue
from feeds.engagements import Recorded, read_stream
from feeds.ranker import Example, OnlineRanker

log = logging.getLogger("livecore.feeds.learner")

READ_BATCH_MAX = 500
BLOCK_MS = 1000
RETRY_S = 1.0


class Learner:
    def __init__(self, client: redis.Redis, catalogue: Catalogue, ranker: OnlineRanker) -> None:
        self.redis = client
        self.catalogue = catalogue
        self.ranker = ranker
        self.position = "0"  # a node that starts learns from everything the stream still holds
        self.read = 0  # events read in all
        self._progressed = asyncio.Event()
        self._reading = asyncio.Lock()  # one read at a time, so no event is learned twice

    async def catch_up(self) -> int:
        """Learn from every event streamed so far; how many were read."""
        read = 0
        while batch := await self._read(block_ms=None):
            read += batch
        return read

    async def until_read(self, count: int) -> None:
        """Wait until more than `count` events have been read in all."""
        while self.read <= count:
            await self._progressed.wait()

    async def run(self) -> None:
        while True:
            try:
                await self._read(block_ms=BLOCK_MS)
            except RedisError as exc:
                log.warning("engagement stream unreadable: %s", exc)
                await asyncio.sleep(RETRY_S)

    async def _read(self, block_ms: int | None) -> int:
        async with self._reading:
            return self._learn(await read_stream(self.redis, self.position, READ_BATCH_MAX, block_ms))

    def _learn(self, entries: list[tuple[str, Recorded]]) -> int:
        for entry_id, event in entries:
            self.position = entry_id
            video = self.catalogue.videos.get(event.video_id)
            if video is not None:
                self.ranker.learn(Example(event.user_id, event.region, event.kind, event.watch_ratio), video)
        if entries:
            self.read += len(entries)
            self._progressed.set()  # wakes those waiting now; later waiters wait for the next read
            self._progressed = asyncio.Event()
        return len(entries)
