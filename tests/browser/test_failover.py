"""The watch page behind nginx when the node serving its WebRTC is killed (-9): it notices from its own packet
counters, negotiates a new session through nginx with the live node and shows video again within 3 s, without
waiting for ICE to fail or for the old session's DELETE; the viewer count stays right while the dead node's
presence has not expired."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as redis
from browsing import OpenMediaPage, go_live, wait_for_frames
from lbcluster import LbCluster, StartCluster
from livenode import Servers
from playwright.async_api import Page, expect

from signaling.presence import REGISTRY

pytestmark = pytest.mark.browser

VIDEO_BACK_S_MAX = 3.0  # the bound for video after the serving node dies
SESSION_PICKS_MAX = 8

NEW_SESSION_FRAMES = """() => {
  const pc = window.livecorePlayer.pc;
  if (!pc || pc === window.lastPc) return 0;
  return pc.getStats().then((stats) => {
    let frames = 0;
    stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0; });
    return frames;
  });
}"""


async def _session_node(cluster: LbCluster, page: Page) -> str:
    url = await page.evaluate("window.livecorePlayer.sessionUrl || ''")
    return cluster.node_of_session(url).node_id if url else ""


async def _watch_through(cluster: LbCluster, page: Page, node_id: str) -> None:
    """Reconnect the page's player until its WHEP session is on `node_id`. Round-robin decides where it lands, and
    the page's DELETE of its old session goes first, so the steering alternates between the nodes."""
    for attempt in range(SESSION_PICKS_MAX):
        if await _session_node(cluster, page) == node_id:
            return
        await cluster.steer_next_request_to(cluster.nodes[attempt % len(cluster.nodes)])
        await page.evaluate("window.livecorePlayer.connect()")
        await expect(page.locator("#video-placeholder")).to_be_hidden()
    raise AssertionError(f"the player's session never landed on {node_id}")


async def test_the_watch_page_fails_over_when_its_node_is_killed(
    start_cluster: StartCluster, open_media_page: OpenMediaPage, servers: Servers
) -> None:
    cluster = await start_cluster(presence_refresh_ms=200, presence_ttl_ms=30_000)
    creator = await cluster.signup()
    studio, stream_id = await go_live(cluster, open_media_page, "Failing over", creator)
    client = redis.Redis.from_url(servers.redis_url)
    try:
        owner_id = (await client.get(f"lc:media:owner:{stream_id}")).decode()
        relay_node = next(node for node in cluster.nodes if node.node_id != owner_id)
        watch = await open_media_page(f"{cluster.url}/watch.html?room={stream_id}")
        await wait_for_frames(watch, 1)
        await _watch_through(cluster, watch, relay_node.node_id)  # relayed from the owner, the case that failed
        await wait_for_frames(watch, 10)
        await expect(watch.locator("#viewer-count")).to_have_text("2")  # the studio and this page
        await watch.evaluate("window.lastPc = window.livecorePlayer.pc")

        relay_node.kill()
        killed_at = time.monotonic()
        while await watch.evaluate(NEW_SESSION_FRAMES) < 1:
            assert time.monotonic() - killed_at < 20, "no video after the node died"
            await asyncio.sleep(0.02)
        video_back_s = time.monotonic() - killed_at
        print(f"video back {video_back_s:.2f} s after kill -9")
        assert await _session_node(cluster, watch) == owner_id
        assert await watch.evaluate("window.livecorePlayer.failovers") == 1  # its packets stopped: not ICE, not 404
        assert video_back_s < VIDEO_BACK_S_MAX
        await wait_for_frames(watch, 10)

        await expect(watch.locator("#viewer-count")).to_have_text("2")
        await expect(studio.locator("#viewer-count")).to_have_text("2")
        owner = cluster.node(owner_id)
        deadline = time.monotonic() + 15  # the dead node's relay goes once its registration expires (5 s)
        while (viewers := await cluster.metric(owner, "livecore_media_viewers")) != 1:  # the page's new session
            assert time.monotonic() < deadline, f"the owner still counts {viewers} WebRTC viewers"
            await asyncio.sleep(0.2)
        registered_until_ms = await client.zscore(REGISTRY, relay_node.node_id)
        now_s, now_us = await client.time()
        assert registered_until_ms > now_s * 1000 + now_us / 1000  # right before the dead node's presence expired
    finally:
        await client.aclose()
