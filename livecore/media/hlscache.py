"""HLS files of a stream another node owns: fetched once from that node, kept as long as its Cache-Control says.

Any node answers a room's playlist and segments. The owner makes them; another node fetches each file from the owner
at its internal URL once, keeps the answer (body, Content-Type, Cache-Control) for the `max-age` the owner gave it,
and serves it from memory until then, with an `Age` header as an HTTP cache does. Requests that come while a fetch is
under way wait for that fetch instead of starting their own (livecore/fetchonce.py), so a crowd asking one node for
a new segment costs the owner one request. Only 200 answers are kept, in a store bounded by `hls_cache_bytes_max`
that lets the least recently used go first; a file is keyed by its owner too, since a new owner makes new files under
the same names.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livecore.clock import Clock
from livecore.fetchonce import FetchOnce
from livecore.media.cluster import NodeAnswer

# The owner's validators too, so a playlist or segment has the same Last-Modified and ETag from whichever node.
KEPT_HEADERS = ("Content-Type", "Cache-Control", "Last-Modified", "ETag")


@dataclass(frozen=True)
class CachedFile:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    fetched_ms: int
    fresh_ms: int  # how long it may be served from the cache: the owner's max-age

    def response_headers(self, now_ms: int) -> dict[str, str]:
        return {**dict(self.headers), "Age": str(max(0, now_ms - self.fetched_ms) // 1000)}


def max_age_s(cache_control: str) -> int:
    """The `max-age` of a Cache-Control value (0 when it has none, or says no-store / no-cache)."""
    directives = [d.strip().lower() for d in cache_control.split(",")]
    if "no-store" in directives or "no-cache" in directives:
        return 0
    for directive in directives:
        name, _, value = directive.partition("=")
        if name == "max-age" and value.isdigit():
            return int(value)
    return 0


class HlsCache:
    """HLS files fetched from owner nodes, at most `bytes_max` bytes of bodies, and the fetches under way."""

    def __init__(self, clock: Clock, bytes_max: int) -> None:
        self._clock = clock
        self.bytes_max = bytes_max
        self._files: OrderedDict[str, CachedFile] = OrderedDict()
        self._bytes = 0
        self._once: FetchOnce[str, CachedFile] = FetchOnce()
        self._fresh_hits = 0

    @property
    def stored_bytes(self) -> int:
        return self._bytes

    @property
    def fetches(self) -> int:
        """Requests sent to owner nodes."""
        return self._once.fetches

    @property
    def hits(self) -> int:
        """Requests answered from the cache or by a fetch another request started."""
        return self._fresh_hits + self._once.joined

    async def get(self, key: str, fetch: Callable[[], Awaitable[NodeAnswer]]) -> CachedFile:
        """The file under `key`: from the cache while fresh, else from the fetch under way or a new one."""
        now_ms = self._clock.now_ms()
        cached = self._files.get(key)
        if cached is not None:
            if now_ms - cached.fetched_ms < cached.fresh_ms:
                self._files.move_to_end(key)
                self._fresh_hits += 1
                return cached
            self._drop(key)
        return await self._once.get(key, lambda: self._fetch(key, fetch))

    async def _fetch(self, key: str, fetch: Callable[[], Awaitable[NodeAnswer]]) -> CachedFile:
        answer = await fetch()
        headers = tuple((name, answer.headers[name]) for name in KEPT_HEADERS if name in answer.headers)
        fresh_s = max_age_s(answer.headers.get("Cache-Control", "")) if answer.status == 200 else 0
        file = CachedFile(answer.status, answer.body, headers, self._clock.now_ms(), fresh_s * 1000)
        if file.fresh_ms > 0 and len(file.body) <= self.bytes_max:
            self._store(key, file)
        return file

    def _store(self, key: str, file: CachedFile) -> None:
        if key in self._files:
            self._drop(key)
        self._files[key] = file
        self._bytes += len(file.body)
        while self._bytes > self.bytes_max:
            self._drop(next(iter(self._files)))

    def _drop(self, key: str) -> None:
        self._bytes -= len(self._files.pop(key).body)
