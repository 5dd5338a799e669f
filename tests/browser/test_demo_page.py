"""The live demo as a new user meets it: `livecore serve --demo`, then the printed watch page in Chromium plays the
demo's moving 720p picture, and the demo viewers' chat and gifts arrive. Ctrl-C ends the demo stream."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from browsing import OpenPage, wait_for_frames
from livenode import Servers
from playwright.async_api import expect
from servenode import Serve, clean_env

from livecore.seed import DEMO_AUDIENCE

pytestmark = pytest.mark.browser

FIRST_FRAME_S_MAX = 5.0  # the promise: moving video within seconds of opening the page
GIFT_S_MAX = 60.0  # each demo viewer sends a gift at least every Pace.gift_s[1] = 40 s
VIDEO_SIZE = """() => window.livecorePlayer.pc.getStats().then((stats) => {
  let size = null;
  stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") size = [s.frameWidth, s.frameHeight]; });
  return size;
})"""


async def test_the_printed_demo_page_plays_video_and_shows_chat_and_gifts(
    servers: Servers, tmp_path: Path, http: aiohttp.ClientSession, open_page: OpenPage,
) -> None:
    # The session's PostgreSQL and Valkey stand in for the embedded ones, so --demo has to be asked for.
    serve = Serve(tmp_path / "data", "--demo",
                  env=clean_env(LIVECORE_DATABASE_URL=servers.database_url, LIVECORE_REDIS_URL=servers.redis_url))
    try:
        printed = await serve.wait_for_output(r"watch the demo\s+(http://\S+/watch\.html\?room=(\d+))")
        watch_url, stream_id = printed.group(1), int(printed.group(2))
        page = await open_page(watch_url)
        opened = time.monotonic()
        first = await wait_for_frames(page, 1, timeout_s=FIRST_FRAME_S_MAX)
        first_frame_s = time.monotonic() - opened
        await wait_for_frames(page, first + 10, timeout_s=FIRST_FRAME_S_MAX)
        print(f"\nserve start to the watch URL: {opened - serve.started_at:.1f} s; page open to the first decoded "
              f"frame: {first_frame_s:.1f} s")
        assert await page.evaluate(VIDEO_SIZE) == [1280, 720]
        await expect(page.locator("#stream-state")).to_have_attribute("data-state", "live")

        demo_viewer = _starts_with_one_of([a.display_name for a in DEMO_AUDIENCE])
        await expect(page.locator("#chat-list li .author").filter(has_text=demo_viewer).first).to_be_visible()
        gift = page.locator("#gift-feed .gift-burst .gift-text").filter(has_text=demo_viewer).first
        await expect(gift).to_contain_text("sent", timeout=GIFT_S_MAX * 1000)
        await expect(page.locator("#top-gifters li").first).to_be_visible()
    finally:
        code = serve.stop(signal.SIGINT)
    assert code == 0, serve.output()
    conn = await asyncpg.connect(servers.database_url)
    try:
        state = await conn.fetchval("SELECT state FROM streams WHERE id = $1", stream_id)
    finally:
        await conn.close()
    assert state == "ended", "Ctrl-C ends the demo stream with the node"


def _starts_with_one_of(names: list[str]) -> re.Pattern[str]:
    return re.compile(rf"^({'|'.join(map(re.escape, names))})\b")
