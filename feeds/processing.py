"""Videos processed off the event loop: a bounded number at once, a bounded queue, the record updated after."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg

from feeds import transcoding, videos
from livecore.http import Problem
from livecore.media.ownercopies import whole_seconds_mtime

log = logging.getLogger("livecore.feeds.processing")

OnReady = Callable[[int], Awaitable[None]]


class VideoFiles:
    """Where a node keeps videos: `<data_dir>/videos/<id>/video.mp4` and `thumbnail.jpg`, uploads staged beside."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def video(self, video_id: int) -> Path:
        return self.root / str(video_id) / "video.mp4"

    def thumbnail(self, video_id: int) -> Path:
        return self.root / str(video_id) / "thumbnail.jpg"

    def staging(self, name: str) -> Path:
        folder = self.root / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name


class VideoProcessor:
    """Checks and transcodes videos in worker threads; `queue_max` bounds what may wait."""

    def __init__(self, pool: asyncpg.Pool, files: VideoFiles, limits: transcoding.VideoLimits, workers: int,
                 queue_max: int, on_ready: OnReady) -> None:
        self.pool = pool
        self.files = files
        self.limits = limits
        self.queue_max = queue_max
        self.on_ready = on_ready
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="livecore-video")
        self._tasks: set[asyncio.Task[None]] = set()

    def busy(self) -> bool:
        return len(self._tasks) >= self.queue_max

    def check_capacity(self) -> None:
        """Refuse with 503 when the queue is full."""
        if self.busy():
            raise Problem(503, "videos-busy", f"{self.queue_max} videos are waiting to be processed on this node "
                          "(video_queue_max); try again shortly", headers={"Retry-After": "10"})

    def submit(self, video_id: int, source: Path, remove_source: bool) -> asyncio.Task[None]:
        """Process the video in the background; refused with 503 when the queue is full."""
        self.check_capacity()
        task = asyncio.create_task(self.process(video_id, source, remove_source), name=f"video-{video_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def process(self, video_id: int, source: Path, remove_source: bool) -> None:
        loop = asyncio.get_running_loop()
        try:
            prepared = await loop.run_in_executor(self._executor, self._prepare, video_id, source, remove_source)
        except transcoding.VideoRejected as refusal:
            log.info("video %s refused: %s", video_id, refusal)
            await videos.mark_failed(self.pool, video_id, str(refusal))
            return
        except Exception as exc:
            log.exception("video %s could not be processed", video_id)
            await videos.mark_failed(self.pool, video_id, f"processing failed: {exc}")
            return
        await videos.mark_ready(self.pool, video_id, prepared.duration_ms, prepared.width, prepared.height)
        log.info("video %s ready (%s)", video_id, "transcoded" if prepared.transcoded else "as uploaded")
        await self.on_ready(video_id)

    def _prepare(self, video_id: int, source: Path, remove_source: bool) -> transcoding.PreparedVideo:
        try:
            prepared = transcoding.prepare_video(source, self.files.video(video_id), self.files.thumbnail(video_id),
                                                 self.limits)
            for path in (self.files.video(video_id), self.files.thumbnail(video_id)):
                whole_seconds_mtime(path)
            return prepared
        finally:
            if remove_source:
                source.unlink(missing_ok=True)

    async def drain(self) -> None:
        """Wait until every video submitted so far is ready or failed."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
