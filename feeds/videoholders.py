"""Reaching the node that holds a video's files: which node that is (the video's row), where it is (the media
registry, at its internal URL), and fetching a file from it onto this node's disk for `VideoCache`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from pathlib import Path

import aiohttp
import asyncpg

from feeds.videocache import VideoCache
from livecore.http import Problem
from livecore.media.cluster import NodeLink

CHUNK_BYTES = 256 * 1024


async def holder_of(pool: asyncpg.Pool, video_id: int) -> tuple[bool, str | None]:
    """Whether the video is ready, and the node that holds its files (None for a video made before nodes were
    recorded)."""
    row = await pool.fetchrow("SELECT state, node_id FROM videos WHERE id = $1", video_id)
    if row is None:
        return False, None
    return row["state"] == "ready", row["node_id"]


class VideoHolders:
    """Other nodes' video files, fetched once per node into a `VideoCache` and counted."""

    def __init__(self, cache: VideoCache, idle_timeout_ms: int, fetches_max: int, on_fetch: Callable[[], None]
                 ) -> None:
        self.cache = cache
        # Files being written are not in the cache's count yet: this bounds them too (and the holders' load).
        self._fetch_slots = asyncio.Semaphore(fetches_max)
        self._idle_timeout_s = idle_timeout_ms / 1000
        self._on_fetch = on_fetch
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.cache.load()
        # No total timeout: a large video takes as long as it takes; a holder that stops sending is given up.
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._idle_timeout_s,
                                                                         sock_read=self._idle_timeout_s),
                                           auto_decompress=False)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def local_copy(self, link: NodeLink, holder: str, video_id: int, name: str) -> Path:
        """This node's copy of a file `holder` has: 503 when that node is gone or does not answer, 404 when it
        does not have the file."""

        async def fetch(target: Path) -> int:
            base = await link.node_url(holder)
            if base is None:
                raise Problem(503, "video-node-gone", f"video {video_id}'s files are on node {holder}, which is not "
                              "running now (no copy on this node); try again when it is back",
                              headers={"Retry-After": "30"})
            async with self._fetch_slots:
                self._on_fetch()
                return await self._download(link, f"{base.rstrip('/')}/videos/{video_id}/{name}", holder, target)

        return await self.cache.get(video_id, name, fetch)

    async def _download(self, link: NodeLink, url: str, holder: str, target: Path) -> int:
        assert self._http is not None, "VideoHolders.start() first"
        size = 0
        try:
            async with self._http.get(url, headers=link.mark(), allow_redirects=False) as response:
                if response.status == 404:
                    raise Problem(404, "video-not-found", f"node {holder} has no file at {url}")
                if response.status != 200:
                    raise Problem(503, "video-node-failed", f"node {holder} answered {response.status} for {url}",
                                  headers={"Retry-After": "10"})
                modified = response.headers.get("Last-Modified")
                with target.open("wb") as out:
                    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                        size += len(chunk)
                        if size > self.cache.bytes_max:
                            raise Problem(503, "video-cache-too-small", f"{url} is more than this node may keep "
                                          f"of other nodes' videos ({self.cache.bytes_max} bytes, "
                                          "video_cache_bytes_max)")
                        out.write(chunk)
                if modified:  # the holder's time, so Last-Modified and the ETag made from it match the holder's
                    stamp = parsedate_to_datetime(modified).timestamp()
                    os.utime(target, (stamp, stamp))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Problem(503, "video-node-unreachable", f"node {holder}, which holds this video's files, did not "
                          f"answer ({exc or type(exc).__name__})", headers={"Retry-After": "10"}) from exc
        return size
