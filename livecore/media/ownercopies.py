"""Files another node owns, copied once onto this node's disk and served from there: video files (feeds/), ended
streams' recordings, thumbnails and HLS (the media plane).

Such files never change once made, and one file goes to many viewers, each player asking for many ranges. Passed
through, every range of every viewer would cost the owner a request and tie playback to the owner being up; copied,
each node costs the owner one fetch per file, later requests are local disk reads answered by aiohttp's file
response exactly as the owner answers them (ranges, conditional requests, the owner's Last-Modified and so ETag),
and a file keeps playing from the nodes that have it while its owner restarts. This is what a CDN edge or an
object-store front does with immutable objects.

Requests that come while a file is being fetched wait for that fetch (livecore/fetchonce.py); the copies together
stay within a bound in bytes (a setting), the least recently served going first. A file larger than the whole
bound is not kept: it is refused with a 503 naming the setting. An owner that is not running is a 503 `*-node-gone`,
one that does not answer `*-node-unreachable`, one that answers with an error `*-node-failed`, each with
Retry-After; a file the owner does not have is a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import aiohttp

from livecore.fetchonce import FetchOnce
from livecore.http import Problem
from livecore.media.cluster import NodeLink

CHUNK_BYTES = 256 * 1024
GONE_RETRY_AFTER_S = 30
FAILED_RETRY_AFTER_S = 10

# Fetches the file into the given path; returns its size in bytes or raises a Problem.
Fetch = Callable[[Path], Awaitable[int]]


@dataclass(frozen=True)
class CopiesOf:
    """What the copies are of, as their problems name it: `kind` ("video") makes `video-node-gone` and the like,
    `not_found` is the 404's type and `setting` the bound's name."""

    kind: str
    not_found: str
    setting: str


def whole_seconds_mtime(path: Path) -> None:
    """Cut a file's modification time to whole seconds: the precision of Last-Modified, which other nodes give their
    copies, so the ETag aiohttp derives from it is the same on every node (If-Range works behind a load balancer).
    The node that makes a file calls this once the file is final."""
    mtime_s = path.stat().st_mtime_ns // 1_000_000_000
    os.utime(path, ns=(mtime_s * 1_000_000_000, mtime_s * 1_000_000_000))


def whole_seconds_mtimes(directory: Path) -> None:
    """`whole_seconds_mtime` for every file under `directory` (blocking: call it from a thread)."""
    for path in directory.rglob("*"):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            whole_seconds_mtime(path)


class FileCopies:
    """Copies of other nodes' files under `root` (by relative path), at most `bytes_max` bytes, and the fetches
    under way."""

    def __init__(self, root: Path, bytes_max: int, of: CopiesOf) -> None:
        self.root = root
        self.bytes_max = bytes_max
        self.of = of
        self._sizes: OrderedDict[Path, int] = OrderedDict()  # least recently served first
        self._bytes = 0
        self._once: FetchOnce[Path, Path] = FetchOnce()
        self._kept_hits = 0

    @property
    def stored_bytes(self) -> int:
        return self._bytes

    @property
    def fetches(self) -> int:
        """Files fetched from their owners."""
        return self._once.fetches

    @property
    def hits(self) -> int:
        """Requests answered from a copy or by a fetch another request started."""
        return self._kept_hits + self._once.joined

    def load(self) -> None:
        """Take over the copies a previous run left, the oldest first (a copy has its owner's modification time);
        drop half-written ones and any excess."""
        self.root.mkdir(parents=True, exist_ok=True)
        found = []
        for path in self.root.rglob("*"):
            if path.name.startswith("."):
                path.unlink(missing_ok=True)
            elif path.is_file():
                found.append((path.stat().st_mtime, path, path.stat().st_size))
        for _, path, size in sorted(found):
            self._sizes[path] = size
            self._bytes += size
        self._make_room(0)

    def path(self, relative: str) -> Path:
        return self.root / relative

    async def get(self, relative: str, fetch: Fetch) -> Path:
        """The local copy of a file: kept already, from the fetch under way, or fetched now."""
        path = self.path(relative)
        if path in self._sizes:
            if path.is_file():
                self._sizes.move_to_end(path)
                self._kept_hits += 1
                return path
            self._bytes -= self._sizes.pop(path)  # removed behind our back: fetched again
        return await self._once.get(path, lambda: self._fetch(path, fetch))

    async def _fetch(self, path: Path, fetch: Fetch) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        try:
            size = await fetch(partial)
            if size > self.bytes_max:
                raise self.too_small(f"this file is {size} bytes")
            self._make_room(size)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        self._sizes[path] = size
        self._bytes += size
        return path

    def too_small(self, what: str) -> Problem:
        return Problem(503, f"{self.of.kind}-cache-too-small", f"{what}, more than this node may keep of other "
                       f"nodes' files ({self.bytes_max} bytes, {self.of.setting})")

    def _make_room(self, size: int) -> None:
        while self._sizes and self._bytes + size > self.bytes_max:
            oldest, oldest_size = self._sizes.popitem(last=False)
            self._bytes -= oldest_size
            # A response still sending it keeps its open file; the name goes now.
            with contextlib.suppress(FileNotFoundError):
                oldest.unlink()


class OwnerCopies:
    """Files other nodes own, fetched at most `fetches_max` at a time into `copies` (each fetch told to
    `on_fetch`)."""

    def __init__(self, copies: FileCopies, idle_timeout_ms: int, fetches_max: int,
                 on_fetch: Callable[[], None] | None = None) -> None:
        self.copies = copies
        # Files being written are not in the copies' count yet: this bounds them too (and the owners' load).
        self._fetch_slots = asyncio.Semaphore(fetches_max)
        self._idle_timeout_s = idle_timeout_ms / 1000
        self._on_fetch = on_fetch
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.copies.load()
        # No total timeout: a large file takes as long as it takes; an owner that stops sending is given up.
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._idle_timeout_s,
                                                                         sock_read=self._idle_timeout_s),
                                           auto_decompress=False)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def local_copy(self, link: NodeLink, owner: str, relative: str, path_on_owner: str) -> Path:
        """This node's copy of the file `owner` serves at `path_on_owner`, kept here under `relative`."""
        kind = self.copies.of.kind

        async def fetch(target: Path) -> int:
            base = await link.node_url(owner)
            if base is None:
                raise Problem(503, f"{kind}-node-gone", f"{path_on_owner} is on node {owner}, which is not running "
                              "now (no copy on this node); try again when it is back",
                              headers={"Retry-After": str(GONE_RETRY_AFTER_S)})
            async with self._fetch_slots:
                if self._on_fetch is not None:
                    self._on_fetch()
                return await self._download(link, f"{base.rstrip('/')}{path_on_owner}", owner, target)

        return await self.copies.get(relative, fetch)

    async def _download(self, link: NodeLink, url: str, owner: str, target: Path) -> int:
        assert self._http is not None, "OwnerCopies.start() first"
        kind = self.copies.of.kind
        retry = {"Retry-After": str(FAILED_RETRY_AFTER_S)}
        size = 0
        try:
            async with self._http.get(url, headers=link.mark(), allow_redirects=False) as response:
                if response.status == 404:
                    raise Problem(404, self.copies.of.not_found, f"node {owner} has no file at {url}")
                if response.status != 200:
                    raise Problem(503, f"{kind}-node-failed", f"node {owner} answered {response.status} for {url}",
                                  headers=retry)
                modified = response.headers.get("Last-Modified")
                with target.open("wb") as out:
                    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                        size += len(chunk)
                        if size > self.copies.bytes_max:
                            raise self.copies.too_small(f"{url} is larger")
                        out.write(chunk)
                if modified:  # the owner's time, so Last-Modified and the ETag made from it match the owner's
                    stamp = parsedate_to_datetime(modified).timestamp()
                    os.utime(target, (stamp, stamp))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Problem(503, f"{kind}-node-unreachable", f"node {owner}, which has this file, did not answer "
                          f"({exc or type(exc).__name__})", headers=retry) from exc
        return size
