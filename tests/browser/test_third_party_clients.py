"""Embedding livecore in somebody else's site: a page on another origin publishes with a third-party WHIP client
(@eyevinn/whip-web-client), plays with a third-party WHEP player (@eyevinn/webrtc-player) and with hls.js started
at the moment the stream goes live. The libraries are the npm packages, bundled once into tests/browser/vendor
(see build.sh there); hls.js is the copy the watch page vendors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from browsing import OpenMediaPage
from playwright.async_api import Page, Response

from livecore.embedded import free_port
from livecore.media import MEDIA

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FILES = {
    "/": (HERE / "embed" / "index.html", "text/html"),
    "/embed.js": (HERE / "embed" / "embed.js", "text/javascript"),
    "/vendor/whip-client.mjs": (HERE / "vendor" / "whip-client.mjs", "text/javascript"),
    "/vendor/webrtc-player.mjs": (HERE / "vendor" / "webrtc-player.mjs", "text/javascript"),
    "/vendor/hls.mjs": (ROOT / "webui" / "static" / "vendor" / "hls.light.min.mjs", "text/javascript"),
}


@pytest_asyncio.fixture(loop_scope="session")
async def other_origin() -> AsyncIterator[str]:
    """A tiny site on another port (so another origin) whose CSP lets its pages reach the test nodes (on loopback)
    and nothing else."""
    nodes = "http://127.0.0.1:*"
    policy = (f"default-src 'self'; script-src 'self'; connect-src 'self' {nodes}; "
              f"media-src 'self' blob: {nodes}; worker-src 'self' blob:; img-src 'self' data:")

    async def serve(request: web.Request) -> web.FileResponse:
        if request.path not in FILES:
            raise web.HTTPNotFound()
        path, content_type = FILES[request.path]
        return web.FileResponse(path, headers={"Content-Type": content_type, "Content-Security-Policy": policy,
                                               "Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/{path:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def until(page: Page, expression: str, predicate: Any, timeout_s: float = 30) -> Any:
    """Evaluate `expression` on the page until `predicate(value)` holds; the last value."""
    deadline = time.monotonic() + timeout_s
    while not predicate(value := await page.evaluate(expression)):
        assert time.monotonic() < deadline, f"{expression} is still {value!r}"
        await asyncio.sleep(0.2)
    return value


async def stream_state(node: Any, stream_id: int) -> str:
    async with node.http.get(f"{node.url}/api/streams/{stream_id}") as response:
        return (await response.json())["state"]


async def test_a_page_on_another_origin_publishes_and_plays_with_third_party_libraries(
    node: Any, other_origin: str, open_media_page: OpenMediaPage,
) -> None:
    creator = await node.signup(roles=["creator"])
    stream = await node.create_stream(creator["token"], "Embedded", live=False)
    stream_id = stream["id"]
    page = await open_media_page(f"{other_origin}/")
    assert node.url.rsplit(":", 1)[1] != other_origin.rsplit(":", 1)[1]
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))

    def answered(method: str, path: str) -> list[int]:
        return [r.status for r in responses if r.request.method == method and r.url.startswith(node.url + path)]

    publishing = await page.evaluate("([url, key]) => embed.publish(url, key)",
                                     [f"{node.url}/whip/{stream_id}", stream["stream_key"]])
    assert publishing == {"trickle": True}, "the WHIP client read the OPTIONS answer as 'no trickle ICE'"
    await page.evaluate("(url) => embed.playHls(url)", f"{node.url}/hls/{stream_id}/index.m3u8")
    await until(page, "embed.publisherState()", lambda state: state == "connected")
    deadline = time.monotonic() + 10  # the node records it once its own side of the connection is up
    while await stream_state(node, stream_id) != "live":
        assert time.monotonic() < deadline, "the stream did not go live when its publisher connected"
        await asyncio.sleep(0.05)

    await page.evaluate("(url) => embed.play(url)", f"{node.url}/whep/{stream_id}")
    first = await until(page, "embed.whepFrames()", lambda frames: frames > 0)
    await until(page, "embed.whepFrames()", lambda frames: frames >= first + 20)
    hls_first = await until(page, "embed.hlsFrames()", lambda frames: frames > 0, 40)
    await until(page, "embed.hlsFrames()", lambda frames: frames >= hls_first + 20)

    assert answered("OPTIONS", f"/whip/{stream_id}") == [204]
    assert answered("POST", f"/whip/{stream_id}") == [201]
    patches = answered("PATCH", f"/whip/{stream_id}/")
    assert patches and set(patches) == {204}, patches  # trickled candidates
    assert answered("POST", f"/whep/{stream_id}") == [201]
    playlists = answered("GET", f"/hls/{stream_id}/index.m3u8")
    assert playlists and set(playlists) == {200}, playlists  # the first request waited for the first segment
    assert not [e for e in await page.evaluate("embed.hlsErrors") if e.startswith("fatal")]

    room = node.app[MEDIA].rooms[stream_id]
    assert room.viewer_count == 1
    await page.evaluate("embed.stopPlaying()")
    assert answered("DELETE", f"/whep/{stream_id}/") == [200]
    deadline = time.monotonic() + 5
    while room.viewer_count:
        assert time.monotonic() < deadline, "the WHEP DELETE left the viewer in the room"
        await asyncio.sleep(0.05)
    await page.evaluate("embed.stopPublishing()")
    assert answered("DELETE", f"/whip/{stream_id}/") == [200]
    assert await stream_state(node, stream_id) == "ended"

    times = await page.evaluate("embed.times")
    print(f"\nthird-party clients, ms: WHIP connected {times['whipConnected'] - times['whipStart']} after start; "
          f"WHEP first frame {times['whepFirstFrame'] - times['whepStart']} after start; "
          f"HLS first frame {times['hlsFirstFrame'] - times['hlsStart']} after start (at go-live)")


async def test_a_page_on_an_origin_not_allowed_cannot_publish(
    node_factory: Any, other_origin: str, open_media_page: OpenMediaPage,
) -> None:
    node = await node_factory(ingest_cors_origins="https://studio.example")
    creator = await node.signup(roles=["creator"])
    stream = await node.create_stream(creator["token"], "Not from there", live=False)
    page = await open_media_page(f"{other_origin}/")
    with pytest.raises(Exception, match="Failed to fetch"):
        await page.evaluate("([url, key]) => embed.publish(url, key)",
                            [f"{node.url}/whip/{stream['id']}", stream["stream_key"]])
    assert stream["id"] not in node.app[MEDIA].rooms
    assert await stream_state(node, stream["id"]) == "created"
