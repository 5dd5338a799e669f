"""The pieces every cache of other nodes' files shares: one fetch per file at a time (FetchOnce), and the bounded
disk copies (FileCopies). Serving through them from other nodes is tested in tests/feeds/test_videos_any_node.py,
tests/media/test_hls_any_node.py and tests/media/test_media_any_node.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

from feeds.videoholders import VIDEO_COPIES
from livecore.fetchonce import FetchOnce
from livecore.http import Problem
from livecore.media.ownercopies import FileCopies


async def test_callers_at_once_share_one_fetch_and_its_failure() -> None:
    once: FetchOnce[str, int] = FetchOnce()
    release = asyncio.Event()
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return calls

    waiting = [asyncio.ensure_future(once.get("a", fetch)) for _ in range(5)]
    other = asyncio.ensure_future(once.get("b", fetch))
    await asyncio.sleep(0)
    waiting[0].cancel()  # one caller giving up does not end the others' fetch
    release.set()
    assert [await w for w in waiting[1:]] == [1, 1, 1, 1] and await other == 2
    assert (once.fetches, once.joined) == (2, 4)

    async def failing() -> int:
        raise Problem(503, "owner-gone", "the owner is gone")

    results = await asyncio.gather(once.get("c", failing), once.get("c", failing), return_exceptions=True)
    assert all(isinstance(r, Problem) for r in results)
    assert await once.get("c", fetch) == 3  # a failed fetch is not remembered: the next caller fetches again
    assert once.fetches == 4


async def test_the_cache_keeps_its_bound_and_lets_the_least_recently_served_go(tmp_path: Path) -> None:
    cache = FileCopies(tmp_path, 250, VIDEO_COPIES)
    cache.load()

    def writer(size: int):  # type: ignore[no-untyped-def]
        async def fetch(target: Path) -> int:
            target.write_bytes(b"x" * size)
            return size
        return fetch

    first = await cache.get("1/video.mp4", writer(100))
    second = await cache.get("2/video.mp4", writer(100))
    assert await cache.get("1/video.mp4", writer(100)) == first  # served again: now the most recent
    third = await cache.get("3/video.mp4", writer(100))
    assert first.is_file() and not second.is_file() and third.is_file()
    assert cache.stored_bytes == 200 and cache.fetches == 3 and cache.hits == 1
    try:
        await cache.get("4/video.mp4", writer(300))
        raise AssertionError("a file larger than the cache was kept")
    except Problem as problem:
        assert problem.status == 503 and problem.slug == "video-cache-too-small"
        assert "video_cache_bytes_max" in problem.detail
    assert cache.stored_bytes == 200 and not list(tmp_path.glob("4/.*"))
    third.unlink()  # removed behind the cache's back: fetched again, counted once
    assert await cache.get("3/video.mp4", writer(100)) == third and third.is_file()
    assert cache.stored_bytes == 200 and cache.fetches == 5

    again = FileCopies(tmp_path, 150, VIDEO_COPIES)  # a restart with a smaller bound keeps the newest copy only
    again.load()
    assert again.stored_bytes == 100 and third.is_file() and not first.is_file()
