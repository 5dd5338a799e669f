"""The feeds context of one node: video processing, engagement, the Following timelines, the For You pipeline and
the background work that keeps them current.

Other contexts reach it only through its routes; it reads accounts, follows and streams through their public
functions and tables' owners (livecore.accounts, livecore.streams).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from feeds import engagements, recordings
from feeds.processing import VideoFiles, VideoProcessor
from feeds.transcoding import VideoLimits
from livecore.node import Node
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.feeds")


class Feeds:
    def __init__(self, node: Node) -> None:
        s = node.settings
        self.node = node
        self.files = VideoFiles(s.data_dir / "videos")
        self.processor = VideoProcessor(node.pool, self.files, VideoLimits(s.video_duration_ms_max,
                                                                           s.video_edge_px_max),
                                        s.video_workers, s.video_queue_max, self.video_ready)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        s = self.node.settings
        self._tasks.append(asyncio.create_task(
            _every(s.recording_video_sweep_ms, self.post_recordings), name="feeds-recordings"))

    async def stop(self) -> None:
        await stop_tasks(*self._tasks)
        await self.processor.stop()

    async def post_recordings(self) -> list[int]:
        """Make videos of the streams that ended with a recording on this node."""
        return await recordings.post_recordings(self.node, self.processor)

    async def record_engagements(self, user_id: int, events: list[engagements.Event]) -> engagements.BatchResult:
        """Store a viewer's batch of events (each id once) and stream the new ones to the learners."""
        node = self.node
        return await engagements.record_batch(node.pool, node.redis, user_id, events, node.clock.now_ms(),
                                              node.settings.engagement_stream_entries_max)

    async def video_ready(self, video_id: int) -> None:
        """A video became playable: it reaches its author's followers' timelines."""


async def _every(interval_ms: int, work: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(interval_ms / 1000)
        try:
            await work()
        except Exception:
            log.exception("feeds background work failed")
