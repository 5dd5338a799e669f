"""The media pages in Chromium: the studio goes live from a fake camera over WHIP, the watch page plays it over
WHEP (frames counted from the peer connection's own getStats()), and over capacity it falls back to HLS."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from browsing import OpenMediaPage, go_live, wait_for_frames
from playwright.async_api import expect

pytestmark = pytest.mark.browser

async def test_studio_goes_live_and_the_watch_page_plays_it(node: Any, open_media_page: OpenMediaPage) -> None:
    studio, stream_id = await go_live(node, open_media_page, "Fake camera")
    assert await studio.locator("#camera-select option").count() >= 1
    watch = await open_media_page(f"{node.url}/watch.html?room={stream_id}")
    first = await wait_for_frames(watch, 1)
    await wait_for_frames(watch, first + 10)
    await expect(watch.locator("#video-placeholder")).to_be_hidden()
    await expect(watch.locator("#stream-state")).to_have_attribute("data-state", "live")
    await expect(watch.locator("#viewer-count")).not_to_have_text("0")
    assert int(await watch.locator("#viewer-count").text_content() or "0") >= 1
    await expect(studio.locator("#viewer-count")).not_to_have_text("0")
    await watch.locator("#unmute-button").click()
    assert await watch.evaluate("document.getElementById('video').muted") is False

    await studio.locator("#end-stream").click()
    await expect(studio.locator("#publish-state")).to_have_attribute("data-state", "ended")
    await expect(watch.locator("#stream-state")).to_have_attribute("data-state", "ended")
    await expect(watch.locator("#video-placeholder")).to_contain_text("ended", timeout=20_000)


async def test_a_full_room_falls_back_to_hls(node_factory: Any, open_media_page: OpenMediaPage) -> None:
    node = await node_factory(media_viewers_per_room_max=0, hls_segment_ms=1000)
    _, stream_id = await go_live(node, open_media_page, "Full room")
    watch = await open_media_page(f"{node.url}/watch.html?room={stream_id}")
    await expect(watch.locator("#video-placeholder")).to_be_hidden(timeout=30_000)
    assert await watch.evaluate("window.livecorePlayer.mode") == "hls"
    deadline = time.monotonic() + 20
    while await watch.evaluate("document.getElementById('video').currentTime") < 0.5:
        assert time.monotonic() < deadline, "the HLS stream does not advance"
        await asyncio.sleep(0.25)
