"""The live demo against a real node, through its public interfaces only: it picks up the demo creator's stream
that is still live (as after a crash) and publishes a 1280x720 picture to it over WHIP; its viewers buy coins with
the local provider's test card and chat and send gifts; when the stream is ended it goes live on a new one; stopping
it ends its stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from livenode import RunningNode
from roomclient import events_until

from livecore import seed
from livecore.demo import Demo, DemoStream, Pace
from livecore.media import MEDIA

# Quicker than the default pace so the test sees gifts soon, still under the rate limits (two chats in 3 s).
BRISK = Pace(chat_s=(1.5, 3.0), like_s=(1.0, 2.0), gift_s=(2.0, 4.0), greeting_s=(0.1, 0.5),
             first_gift_s=(0.5, 1.5))
WAIT_S_MAX = 30.0


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S_MAX
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT_S_MAX:.0f} s for {what}"
        await asyncio.sleep(0.05)


async def _first_video_frame_size(http: aiohttp.ClientSession, base_url: str, stream_id: int) -> tuple[int, int]:
    """Watch over WHEP like a browser and decode the first picture."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        async with http.post(f"{base_url}/whep/{stream_id}", data=pc.localDescription.sdp,
                             headers={"Content-Type": "application/sdp"}) as response:
            assert response.status == 201, await response.text()
            answer = await response.text()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        [video] = [r.track for r in pc.getReceivers() if r.track.kind == "video"]
        frame = await asyncio.wait_for(video.recv(), WAIT_S_MAX)
        return frame.width, frame.height
    finally:
        await pc.close()


async def _log_in(node: RunningNode, account: seed.DemoAccount) -> dict[str, str]:
    async with node.http.post(f"{node.url}/api/sessions", json={"username": account.username,
                                                                 "password": account.password}) as r:
        assert r.status == 200
        return {"Authorization": f"Bearer {(await r.json())['token']}"}


async def test_the_demo_publishes_its_viewers_chat_and_gift_and_it_outlives_its_stream(node: RunningNode) -> None:
    await seed.seed_demo(node.node)
    creator = await _log_in(node, seed.DEMO_CREATOR)
    # Live as if its publisher were still within the reconnect grace after a crash.
    leftover = (await node.create_stream(creator["Authorization"].split()[1], "left live by a crash"))["id"]
    announced: list[DemoStream] = []
    demo = Demo(node.url, on_live=announced.append, pace=BRISK)
    await demo.start()
    try:
        await _until(lambda: bool(announced), "the demo to go live")
        assert announced[0].id == leftover, "the demo creator's live stream is reused, not left dangling"
        assert await _first_video_frame_size(node.http, node.url, leftover) == (1280, 720)

        audience = {a.display_name for a in seed.DEMO_AUDIENCE}
        room = await node.ws(leftover)

        def chat_and_gift(events: list[dict]) -> bool:
            kinds = {e["type"] for e in events if e.get("user", {}).get("name") in audience}
            return {"chat", "gift"} <= kinds

        await events_until(room, chat_and_gift, timeout_s=WAIT_S_MAX)
        bought = await node.node.pool.fetchval(
            "SELECT count(*) FROM coin_purchases p JOIN accounts a ON a.id = p.buyer_id"
            " WHERE a.username = ANY($1::text[]) AND p.state = 'succeeded'",
            [a.username for a in seed.DEMO_AUDIENCE])
        assert bought >= 1, "the demo viewers pay for their coins through the provider"

        async with node.http.post(f"{node.url}/api/streams/{leftover}/end", headers=creator) as r:
            assert r.status == 200
        await _until(lambda: len(announced) >= 2, "the demo to go live again")
        replacement = announced[1].id
        assert replacement != leftover
        room = await node.ws(replacement)
        await events_until(room, lambda got: any(e["type"] in ("snapshot", "stream") and e.get("state") == "live"
                                                 for e in got), timeout_s=WAIT_S_MAX)
    finally:
        await demo.stop()
    async with node.http.get(f"{node.url}/api/streams/{announced[-1].id}") as r:
        assert (await r.json())["state"] == "ended", "stopping the demo ends its stream (WHIP DELETE)"
    assert not node.app[MEDIA].rooms
