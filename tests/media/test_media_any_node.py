"""An ended stream's recording, thumbnail and HLS from any node: the node that made them is another `livecore serve`
process; the node asked copies each file once from it and answers as it does; once the maker is killed, what was
copied still plays and what was not is a clear 503 problem+json, not a hang or a 500."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
from livenode import RunningNode, Servers
from mediapeers import publish
from multidict import CIMultiDict
from servenode import Serve, clean_env

from livecore.media import MEDIA

WAIT_S_MAX = 60.0
SAME_HEADERS = ("Content-Type", "Cache-Control", "Last-Modified", "ETag", "Accept-Ranges")


async def _get(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
               ) -> tuple[int, CIMultiDict[str], bytes]:
    async with http.get(url, headers=headers or {}) as response:
        return response.status, response.headers.copy(), await response.read()


async def _until(check: Any, what: str) -> Any:
    """Poll the coroutine function `check` until it returns something true."""
    deadline = time.monotonic() + WAIT_S_MAX
    while not (found := await check()):
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.2)
    return found


async def _maker(servers: Servers, directory: Path, http: aiohttp.ClientSession) -> Serve:
    maker = Serve(directory / "maker", env=clean_env(
        LIVECORE_DATABASE_URL=servers.database_url, LIVECORE_REDIS_URL=servers.redis_url, LIVECORE_SEED_DEMO="no",
        LIVECORE_HLS_SEGMENT_MS="1000", LIVECORE_THUMBNAIL_INTERVAL_MS="1000"))
    await maker.wait_ready(http)
    return maker


async def _ended_stream(maker: Serve, other: RunningNode, http: aiohttp.ClientSession) -> tuple[int, list[str]]:
    """A stream published to `maker` for a few segments, then ended: its id and its segments' names."""
    account = await other.signup(roles=["creator"])
    stream = await other.create_stream(account["token"], live=False)
    base = f"{maker.url}/hls/{stream['id']}"
    publisher = await publish(http, maker.url, stream)
    assert publisher.status == 201
    try:
        async def segments() -> bool:
            status, _, body = await _get(http, f"{base}/index.m3u8")
            return status == 200 and body.count(b"#EXTINF") >= 3

        await _until(segments, "three HLS segments on the maker")
        async with http.delete(f"{maker.url}{publisher.location}",
                               headers={"Authorization": f"Bearer {stream['stream_key']}"}) as response:
            assert response.status == 200
    finally:
        await publisher.pc.close()

    async def recorded() -> bool:
        async with http.get(f"{other.url}/api/streams/{stream['id']}") as response:
            record = await response.json()
        return record["state"] == "ended" and record["recording_url"] is not None

    await _until(recorded, "the stream ended with a recording")

    async def released() -> bool:  # until then another node passes playlist requests on to it as to a live owner
        return await other.app[MEDIA].registry.owner(stream["id"]) is None

    await _until(released, "the maker gave up owning the ended stream")
    _, _, playlist = await _get(http, f"{base}/index.m3u8")
    return stream["id"], [line for line in playlist.decode().splitlines() if line.endswith(".ts")]


async def test_an_ended_streams_files_play_from_a_node_that_did_not_make_them(  # type: ignore[no-untyped-def]
        node_factory, servers: Servers, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    maker = await _maker(servers, tmp_path, http)
    try:
        other = await node_factory()
        stream_id, segments = await _ended_stream(maker, other, http)
        copies = other.app[MEDIA].copies.copies
        for path in (f"/media/{stream_id}/recording.mp4", f"/media/{stream_id}/thumbnail.jpg",
                     f"/hls/{stream_id}/index.m3u8", f"/hls/{stream_id}/{segments[0]}"):
            made = await _get(http, maker.url + path)
            copied = await _get(http, other.url + path)
            assert made[0] == copied[0] == 200, path
            assert copied[2] == made[2], path
            for name in SAME_HEADERS:
                assert copied[1].get(name) == made[1].get(name), (path, name)
        assert copies.fetches == 4
        recording = f"{other.url}/media/{stream_id}/recording.mp4"
        status, headers, body = await _get(http, recording, {"Range": "bytes=100-199"})
        assert status == 206 and len(body) == 100 and headers["Content-Range"].startswith("bytes 100-199/")
        assert copies.fetches == 4  # the range from the copy

        crowd = await asyncio.gather(*(_get(http, f"{other.url}/hls/{stream_id}/{segments[1]}") for _ in range(8)))
        made = await _get(http, f"{maker.url}/hls/{stream_id}/{segments[1]}")
        assert [(status, body == made[2]) for status, _, body in crowd] == [(200, True)] * 8
        assert copies.fetches == 5  # eight requests at once cost the maker one
        status, _, _ = await _get(http, f"{other.url}/hls/{stream_id}/seg999999.ts")
        assert status == 404  # the maker has no such file: not found, and nothing kept
        async with http.get(f"{other.url}/metrics") as response:
            assert "livecore_media_file_copies_total 6.0" in await response.text()
    finally:
        maker.end()


async def test_a_killed_maker_is_a_clear_503_and_copies_still_play(  # type: ignore[no-untyped-def]
        node_factory, servers: Servers, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    maker = await _maker(servers, tmp_path, http)
    try:
        other = await node_factory()
        stream_id, segments = await _ended_stream(maker, other, http)
        recording = f"{other.url}/media/{stream_id}/recording.mp4"
        status, _, kept = await _get(http, recording)
        assert status == 200
    finally:
        maker.kill()

    status, _, body = await _get(http, recording)
    assert status == 200 and body == kept
    status, _, body = await _get(http, recording, {"Range": "bytes=0-9"})
    assert status == 206 and body == kept[:10]
    for path in (f"/hls/{stream_id}/{segments[-1]}", f"/media/{stream_id}/thumbnail.jpg"):
        async with http.get(other.url + path, timeout=aiohttp.ClientTimeout(total=WAIT_S_MAX)) as response:
            problem = await response.json(content_type=None)
            assert response.status == 503 and response.content_type == "application/problem+json", problem
            assert problem["type"] in ("livecore:media-node-gone", "livecore:media-node-unreachable"), problem
            assert maker.node_id in problem["detail"] and int(response.headers["Retry-After"]) > 0
