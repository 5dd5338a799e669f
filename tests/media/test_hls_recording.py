"""HLS read back with FFmpeg's own HLS demuxer, the recording and the thumbnail, for H.264 and VP8 publishers."""

from __future__ import annotations

import asyncio

import av
import pytest
from mediapeers import publish, wait_for

from livecore.media import MEDIA


def _decode_frames(container, limit: int) -> int:  # type: ignore[no-untyped-def]
    """Decode up to `limit` video frames (a live playlist never ends, so stop there)."""
    count = 0
    for _ in container.decode(video=0):
        count += 1
        if count >= limit:
            break
    return count


@pytest.mark.parametrize("video_mime", ["video/H264", "video/VP8"])
async def test_hls_recording_and_thumbnail(node_factory, http, video_mime):  # type: ignore[no-untyped-def]
    node = await node_factory(hls_segment_ms=1000, thumbnail_interval_ms=1000)
    account = await node.signup(roles=["creator"])
    stream = await node.create_stream(account["token"], live=False)
    publisher = await publish(http, node.url, stream, video_mime)
    assert publisher.status == 201
    plane = node.app[MEDIA]
    files = plane.files(stream["id"])
    try:
        await wait_for(lambda: files.playlist.exists() and files.playlist.read_text().count("#EXTINF") >= 2, 20)
        async with http.get(f"{node.url}/hls/{stream['id']}/index.m3u8") as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "public, max-age=1"
            playlist = await response.text()
        assert "#EXT-X-PROGRAM-DATE-TIME" in playlist
        segment = next(line for line in playlist.splitlines() if line.endswith(".ts"))
        async with http.get(f"{node.url}/hls/{stream['id']}/{segment}") as response:
            assert response.status == 200
            assert "immutable" in response.headers["Cache-Control"]
        container = await asyncio.to_thread(av.open, f"{node.url}/hls/{stream['id']}/index.m3u8")
        try:
            kinds = {s.type: s.codec_context.name for s in container.streams}
            assert kinds == {"video": "h264", "audio": "aac"}
            frames = await asyncio.to_thread(_decode_frames, container, 10)
        finally:
            container.close()
        assert frames >= 10
        await wait_for(lambda: files.thumbnail.exists(), 10)
        await asyncio.sleep(1.2)
        async with http.get(f"{node.url}/api/live") as response:
            live = {s["id"]: s for s in (await response.json())["streams"]}
        assert live[stream["id"]]["thumbnail_url"] == f"/media/{stream['id']}/thumbnail.jpg"
        async with http.get(f"{node.url}/media/{stream['id']}/thumbnail.jpg") as response:
            assert response.status == 200
            assert (await response.read())[:2] == b"\xff\xd8"
        async with http.delete(f"{node.url}{publisher.location}",
                               headers={"Authorization": f"Bearer {stream['stream_key']}"}) as response:
            assert response.status == 200
    finally:
        await publisher.pc.close()
    await wait_for(lambda: stream["id"] not in plane.outputs, 15)
    await asyncio.sleep(0.2)
    async with http.get(f"{node.url}/api/streams/{stream['id']}") as response:
        record = await response.json()
    assert record["state"] == "ended"
    assert record["recording_url"] == f"/media/{stream['id']}/recording.mp4"
    recording = await asyncio.to_thread(av.open, str(files.recording))
    try:
        duration_s = recording.duration / 1_000_000
        decoded = await asyncio.to_thread(lambda: sum(1 for _ in recording.decode(video=0)))
    finally:
        recording.close()
    assert 2 <= duration_s <= 30
    assert decoded >= 15


async def test_a_playlist_asked_for_before_the_first_segment_waits_for_it(node_factory, http):  # type: ignore[no-untyped-def]
    """A player that starts with the stream (hls.js gives up on a 404 playlist) gets the playlist once it exists."""
    node = await node_factory(hls_segment_ms=1000, hls_playlist_wait_ms_max=20_000)
    account = await node.signup(roles=["creator"])
    stream = await node.create_stream(account["token"], live=False)
    files = node.app[MEDIA].files(stream["id"])
    url = f"{node.url}/hls/{stream['id']}/index.m3u8"
    early = asyncio.ensure_future(http.get(url, headers={"Origin": "https://player.example"}))
    await wait_for(lambda: node.app[MEDIA].playlists.waiting(stream["id"]) == 1, 5)
    assert not files.playlist.exists()
    publisher = await publish(http, node.url, stream)
    try:
        assert publisher.status == 201
        response = await early
        async with response:
            assert response.status == 200, await response.text()
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            playlist = await response.text()
        assert playlist.startswith("#EXTM3U") and "#EXTINF" in playlist
    finally:
        await publisher.pc.close()


async def test_a_playlist_that_does_not_come_is_404(node_factory, http):  # type: ignore[no-untyped-def]
    node = await node_factory(hls_playlist_wait_ms_max=200)
    account = await node.signup(roles=["creator"])
    waiting = await node.create_stream(account["token"], live=False)
    ended = await node.create_stream(account["token"], live=False)
    async with http.post(f"{node.url}/api/streams/{ended['id']}/end",
                         headers={"Authorization": f"Bearer {account['token']}"}) as response:
        assert response.status == 200
    for stream in (waiting, ended):
        async with http.get(f"{node.url}/hls/{stream['id']}/index.m3u8") as response:
            assert response.status == 404
            assert (await response.json())["type"] == "livecore:hls-not-ready"


async def test_a_publisher_back_within_the_grace_continues_the_playlist(node_factory, http):  # type: ignore[no-untyped-def]
    node = await node_factory(hls_segment_ms=1000)
    account = await node.signup(roles=["creator"])
    stream = await node.create_stream(account["token"], live=False)
    plane = node.app[MEDIA]
    files = plane.files(stream["id"])

    def segments() -> list[str]:
        return [line for line in files.playlist.read_text().splitlines() if line.endswith(".ts")]

    first = await publish(http, node.url, stream)
    await wait_for(lambda: files.playlist.exists() and len(segments()) >= 2, 20)
    first_take = segments()
    await first.pc.close()
    await wait_for(lambda: stream["id"] not in plane.outputs, 15)
    second = await publish(http, node.url, stream)
    try:
        assert second.status == 201
        await wait_for(lambda: "#EXT-X-DISCONTINUITY" in files.playlist.read_text()
                       and segments()[-1] > first_take[-1], 20)
        playlist = files.playlist.read_text()
        assert "#EXT-X-ENDLIST" not in playlist
        assert segments() == sorted(segments())  # numbering goes on: players keep their place
        assert files.recording.exists() and (files.directory / "recording-2.mp4").exists()
    finally:
        await second.pc.close()
