"""Time to first frame on join: WHEP viewers joining a live stream, with the group-of-pictures cache off and on.

Two `livecore serve` nodes run side by side on their own embedded servers, one with `media_gop_cache_packets_max=0`
(a joiner waits for the next keyframe, as before the cache) and one on the defaults. Each gets a publisher of the
same pre-encoded 720p H.264 clip as benchmarks/media_forwarding.py (30 fps, a keyframe every 2 s as OBS sends by
default; pre-encoded, so keyframe requests are not answered, as an encoder with a fixed interval does). Viewers then
join the two nodes in turns, at random points of the group of pictures, and each measures from its SDP answer to its
first decoded video frame (ICE and DTLS included, the same on both nodes). Printed: median, p90 and max per node,
and the ratio of the medians.
Run: `.venv/bin/python benchmarks/first_frame.py --joins 20`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pickle
import random
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiortc import MediaStreamTrack, RTCSessionDescription
from benchnode import BenchNode, bench_node, call, sign_up
from media_forwarding import GOP_FRAMES, ClipTrack, encode_clip, new_pc, prefer_h264

FPS = 30
JOIN_TIMEOUT_S = 15.0


async def go_live(http: aiohttp.ClientSession, node: BenchNode, frames: list[bytes]) -> tuple[int, object]:
    """A stream on `node` with the clip published over WHIP; returns its id and the publisher's peer."""
    await node.wait_ready(http)
    account = await sign_up(http, node.url)
    status, stream = await call(http, "POST", f"{node.url}/api/streams", account["token"], {"title": "first frame"})
    assert status == 201, stream
    pc = new_pc()
    prefer_h264(pc.addTransceiver(ClipTrack(frames), direction="sendonly"))
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(f"{node.url}/whip/{stream['id']}", data=pc.localDescription.sdp, headers={
            "Content-Type": "application/sdp", "Authorization": f"Bearer {stream['stream_key']}"}) as response:
        assert response.status == 201, await response.text()
        await pc.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
    return stream["id"], pc


async def first_frame_s(http: aiohttp.ClientSession, whep_url: str) -> float:
    """Seconds from a new viewer's SDP answer to its first decoded video frame."""
    pc = new_pc()
    pc.addTransceiver("video", direction="recvonly")
    decoded: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def first_frame(track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            await track.recv()
            if not decoded.done():
                decoded.set_result(time.monotonic())

    tasks: list[asyncio.Task[None]] = []
    pc.on("track", lambda track: tasks.append(asyncio.ensure_future(first_frame(track))))
    try:
        await pc.setLocalDescription(await pc.createOffer())
        async with http.post(whep_url, data=pc.localDescription.sdp,
                             headers={"Content-Type": "application/sdp"}) as response:
            assert response.status == 201, await response.text()
            answer = await response.text()
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        answered = time.monotonic()
        return await asyncio.wait_for(decoded, JOIN_TIMEOUT_S) - answered
    finally:
        for task in tasks:
            task.cancel()
        await pc.close()


def summary(name: str, times_s: list[float]) -> str:
    ordered = sorted(times_s)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (f"| {name} | {len(ordered)} | {statistics.median(ordered) * 1000:.0f} | {p90 * 1000:.0f} | "
            f"{ordered[-1] * 1000:.0f} |")


async def run(joins: int, frames: list[bytes]) -> None:
    with bench_node(media_gop_cache_packets_max="0") as without, bench_node() as with_cache:
        async with aiohttp.ClientSession() as http:
            nodes = {"cache off": without, "cache on": with_cache}
            live = {name: await go_live(http, node, frames) for name, node in nodes.items()}
            await asyncio.sleep(3)  # both publishers connected and past their first keyframe
            times: dict[str, list[float]] = {name: [] for name in nodes}
            for _ in range(joins):
                for name, node in nodes.items():
                    await asyncio.sleep(random.uniform(0, GOP_FRAMES / FPS))  # anywhere in the group of pictures
                    times[name].append(await first_frame_s(http, f"{node.url}/whep/{live[name][0]}"))
            for _, publisher in live.values():
                await publisher.close()  # type: ignore[attr-defined]
    print(f"time to first decoded frame after the WHEP answer, 720p H.264, keyframe every {GOP_FRAMES / FPS:g} s")
    print("| node | joins | median ms | p90 ms | max ms |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        print(summary(name, values))
    ratio = statistics.median(times["cache off"]) / statistics.median(times["cache on"])
    print(f"median without the cache / with it: {ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--joins", type=int, default=20, help="viewers joining each node")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="livecore-first-frame-") as directory:
        clip = Path(directory) / "clip.pickle"
        encode_clip(clip)
        frames = pickle.loads(clip.read_bytes())
        asyncio.run(run(args.joins, frames))


if __name__ == "__main__":
    main()
