"""One fetch per key at a time: callers asking for a key while its fetch is under way wait for that fetch.

What the node's caches of other nodes' files share (HLS in memory, video files and recordings on disk): a crowd
asking one node for a file it does not have costs the node that has it one request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class FetchOnce(Generic[K, V]):
    """The fetches under way, by key, and how many callers started one or joined one."""

    def __init__(self) -> None:
        self._fetching: dict[K, asyncio.Task[V]] = {}
        self.fetches = 0  # fetches started
        self.joined = 0  # callers that waited for a fetch another caller started

    async def get(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        """What `fetch` gives for `key`: from the fetch under way for it, or from a new one. Its exception is
        raised to every caller waiting for it; the next caller fetches again."""
        task = self._fetching.get(key)
        if task is None:
            self.fetches += 1
            task = asyncio.ensure_future(fetch())
            self._fetching[key] = task
            task.add_done_callback(partial(self._done, key))
        else:
            self.joined += 1
        return await asyncio.shield(task)  # one caller giving up does not cancel the others' fetch

    def _done(self, key: K, task: asyncio.Future[V]) -> None:
        if self._fetching.get(key) is task:
            del self._fetching[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter has had it raised already
