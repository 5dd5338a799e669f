"""HLS from a node that does not own the stream: each file fetched once from the owner and kept as long as the
owner's Cache-Control allows (the node's clock drives it), served with the owner's headers; a crowd asking for one
segment at once costs the owner one request."""

from __future__ import annotations

import asyncio

from mediapeers import publish, wait_for

from livecore.clock import Clock, ManualClock
from livecore.media import MEDIA
from livecore.media.hlscache import max_age_s


async def _get(http, url):  # type: ignore[no-untyped-def]
    async with http.get(url) as response:
        return response.status, response.headers.copy(), await response.read()


def test_max_age_reads_cache_control():
    assert max_age_s("public, max-age=1") == 1
    assert max_age_s("public, max-age=86400, immutable") == 86400
    assert max_age_s("no-store, max-age=5") == 0
    assert max_age_s("public") == 0


async def test_hls_from_a_node_that_does_not_own_the_stream(node_factory, http):  # type: ignore[no-untyped-def]
    owner = await node_factory(hls_segment_ms=1000)
    clock = ManualClock(Clock().now_ms())
    other = await node_factory(clock)
    account = await owner.signup(roles=["creator"])
    stream = await owner.create_stream(account["token"], live=False)
    publisher = await publish(http, owner.url, stream)
    assert publisher.status == 201
    files = owner.app[MEDIA].files(stream["id"])
    cache = other.app[MEDIA].hls_cache
    base = f"/hls/{stream['id']}"
    try:
        await wait_for(lambda: files.playlist.exists() and files.playlist.read_text().count("#EXTINF") >= 2, 30)
        status, headers, playlist = await _get(http, f"{other.url}{base}/index.m3u8")
        assert status == 200 and cache.fetches == 1
        assert headers["Cache-Control"] == "public, max-age=1"
        assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert await _get(http, f"{other.url}{base}/index.m3u8") == (200, headers, playlist)  # fresh: from memory
        assert cache.fetches == 1 and cache.hits == 1
        clock.advance(1.0)  # the owner's max-age has passed: fetched again
        status, headers, _ = await _get(http, f"{other.url}{base}/index.m3u8")
        assert status == 200 and cache.fetches == 2 and headers["Age"] == "0"

        segment = next(line for line in playlist.decode().splitlines() if line.endswith(".ts"))
        from_owner = await _get(http, f"{owner.url}{base}/{segment}")
        assert from_owner[0] == 200
        crowd = await asyncio.gather(*(_get(http, f"{other.url}{base}/{segment}") for _ in range(8)))
        assert cache.fetches == 3  # eight requests at once, one fetch from the owner
        for status, headers, body in crowd:
            assert status == 200 and body == from_owner[2]
            for name in ("Cache-Control", "Content-Type", "Last-Modified", "ETag"):
                assert headers[name] == from_owner[1][name]
        clock.advance(600)
        status, headers, body = await _get(http, f"{other.url}{base}/{segment}")
        assert (status, body, cache.fetches) == (200, from_owner[2], 3)  # immutable: still from memory
        assert headers["Age"] == "600"

        status, _, _ = await _get(http, f"{other.url}{base}/seg999999.ts")
        assert status == 404  # the owner's refusal is passed on, and not kept
        status, _, _ = await _get(http, f"{other.url}{base}/seg999999.ts")
        assert status == 404 and cache.fetches == 5
        async with http.get(f"{other.url}/metrics") as response:
            metrics = await response.text()
        assert "livecore_media_hls_owner_fetches_total 5.0" in metrics
    finally:
        await publisher.pc.close()


async def test_the_cache_keeps_to_its_bound(node_factory, http):  # type: ignore[no-untyped-def]
    owner = await node_factory(hls_segment_ms=1000)
    other = await node_factory(hls_cache_bytes_max=1)  # no file fits: every request is a fetch
    account = await owner.signup(roles=["creator"])
    stream = await owner.create_stream(account["token"], live=False)
    publisher = await publish(http, owner.url, stream)
    files = owner.app[MEDIA].files(stream["id"])
    cache = other.app[MEDIA].hls_cache
    try:
        await wait_for(lambda: files.playlist.exists() and files.playlist.read_text().count("#EXTINF") >= 2, 30)
        segment = next(line for line in files.playlist.read_text().splitlines() if line.endswith(".ts"))
        for fetches in (1, 2):
            status, _, body = await _get(http, f"{other.url}/hls/{stream['id']}/{segment}")
            assert status == 200 and body and cache.fetches == fetches and cache.stored_bytes == 0
    finally:
        await publisher.pc.close()
