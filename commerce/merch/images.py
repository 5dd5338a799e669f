"""Image work off the event loop: decoding designs and drawing mockups run in a few threads, with a bound on
how many jobs may wait, so a burst of uploads slows uploads down instead of the node."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from livecore.http import Problem

T = TypeVar("T")


class ImageWorkers:
    def __init__(self, workers: int, queue_max: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="livecore-image")
        self._queue_max = queue_max
        self._waiting = 0

    async def run(self, job: Callable[..., T], *args: object) -> T:
        """Run `job(*args)` in an image thread; 503 `images-busy` when `image_queue_max` jobs already wait."""
        if self._waiting >= self._queue_max:
            raise Problem(503, "images-busy", "too many images are being processed on this node; try again shortly",
                          rule="image_queue_max", limit_value=self._queue_max)
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, job, *args)
        finally:
            self._waiting -= 1

    def stop(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
