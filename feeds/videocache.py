"""Video files another node holds: fetched whole from that node once, kept on this node's disk, served from there.

A video's files (the MP4 and its thumbnail) are written by the node that processed it; its row names that node
(`videos.node_id`). Any other node asked for one fetches it from the holder at the holder's internal URL (from the
media registry, as HLS does), writes it to `<data dir>/video-cache/<id>/<name>` and then answers from that copy with
aiohttp's file response, exactly as the holder does (ranges, conditional requests, `immutable`).

Why a disk cache rather than passing each range request through to the holder: a video never changes once ready,
and a feed sends one video to many viewers, each player asking for many ranges. Passed through, every range of
every viewer costs the holder a request and keeps playback tied to the holder being up; cached, each node costs the
holder one fetch per file, later requests are local disk reads, and a video keeps playing from the nodes that have
it while its holder restarts. This is what a CDN edge or an object-store front does with immutable objects.

Requests that come while a file is being fetched wait for that fetch instead of starting their own (coalesced),
and the copies together stay within `video_cache_bytes_max`: the least recently served go first. A file larger
than the whole cache is not kept; it is refused with `503 video-cache-too-small` naming the setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

from livecore.http import Problem

# Fetches the file into the given path; returns its size in bytes or raises a Problem.
Fetch = Callable[[Path], Awaitable[int]]


class VideoCache:
    """Copies of other nodes' video files under `root`, at most `bytes_max` bytes, and the fetches under way."""

    def __init__(self, root: Path, bytes_max: int) -> None:
        self.root = root
        self.bytes_max = bytes_max
        self._sizes: OrderedDict[Path, int] = OrderedDict()  # least recently served first
        self._bytes = 0
        self._fetching: dict[Path, asyncio.Task[Path]] = {}
        self.fetches = 0  # files fetched from holder nodes
        self.hits = 0  # requests answered from a copy or by a fetch another request started

    @property
    def stored_bytes(self) -> int:
        return self._bytes

    def load(self) -> None:
        """Take over the copies a previous run left, the oldest videos first (a copy has its holder's modification
        time); drop half-written ones and any excess."""
        self.root.mkdir(parents=True, exist_ok=True)
        found = []
        for path in self.root.glob("*/*"):
            if path.name.startswith("."):
                path.unlink(missing_ok=True)
            elif path.is_file():
                found.append((path.stat().st_mtime, path, path.stat().st_size))
        for _, path, size in sorted(found):
            self._sizes[path] = size
            self._bytes += size
        self._make_room(0)

    def path(self, video_id: int, name: str) -> Path:
        return self.root / str(video_id) / name

    async def get(self, video_id: int, name: str, fetch: Fetch) -> Path:
        """The local copy of a video's file: kept already, from the fetch under way, or fetched now."""
        path = self.path(video_id, name)
        if path in self._sizes:
            if path.is_file():
                self._sizes.move_to_end(path)
                self.hits += 1
                return path
            self._bytes -= self._sizes.pop(path)  # removed behind our back: fetched again
        task = self._fetching.get(path)
        if task is None:
            task = asyncio.create_task(self._fetch(path, fetch))
            self._fetching[path] = task
            task.add_done_callback(lambda done: self._fetched(path, done))
        else:
            self.hits += 1
        return await asyncio.shield(task)  # one viewer giving up does not cancel the others' fetch

    async def _fetch(self, path: Path, fetch: Fetch) -> Path:
        self.fetches += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        try:
            size = await fetch(partial)
            if size > self.bytes_max:
                raise Problem(503, "video-cache-too-small", f"this file is {size} bytes, more than this node may "
                              f"keep of other nodes' videos ({self.bytes_max}, video_cache_bytes_max)")
            self._make_room(size)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        self._sizes[path] = size
        self._bytes += size
        return path

    def _fetched(self, path: Path, task: asyncio.Task[Path]) -> None:
        self._fetching.pop(path, None)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter has had it raised already

    def _make_room(self, size: int) -> None:
        while self._sizes and self._bytes + size > self.bytes_max:
            oldest, oldest_size = self._sizes.popitem(last=False)
            self._bytes -= oldest_size
            # A response still sending it keeps its open file; the name goes now.
            with contextlib.suppress(FileNotFoundError):
                oldest.unlink()
