"""The media side of a run: a creator publishing over WHIP (which makes the room live, so gifts can be sent), WebRTC
viewers over WHEP that count packets without decoding them, and HLS pullers that fetch the playlist and segments.

aiortc decodes whatever a receiver gets in a thread of its own; a load tester must not pay for that, so each WHEP
viewer's receivers are tapped as the node taps its publishers' (livecore/media/peers.py): the frames the jitter
buffer reassembles are looked at for the first keyframe and then dropped, and the decoder thread is stopped.
Packets, bytes and losses come from the peer connection's RTP statistics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import m3u8
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from livecore.demo.client import NodeClient
from livecore.demo.publisher import WhipSession
from livecore.demo.stage import DemoStream

H264_KEY_NAL_TYPES = frozenset({5, 7})  # an IDR slice, or the SPS that comes before one
HLS_POLL_S = 1.0
HLS_SEGMENTS_SEEN_MAX = 10_000  # segment names a puller remembers, so it fetches each once
WHEP_CONNECT_S_MAX = 20.0


def is_h264_keyframe(data: bytes) -> bool:
    """Whether an Annex B access unit holds an IDR slice or an SPS."""
    position = data.find(b"\x00\x00\x01")
    while position >= 0 and position + 3 < len(data):
        if data[position + 3] & 0x1F in H264_KEY_NAL_TYPES:
            return True
        position = data.find(b"\x00\x00\x01", position + 3)
    return False


def count_without_decoding(receiver: Any, on_keyframe: Callable[[], None]) -> None:
    """Tap an aiortc receiver: `on_keyframe` at each H.264 keyframe it reassembles, no frame to its decoder, and
    its decoder thread stopped once it started."""
    jitter_buffer = receiver._RTCRtpReceiver__jitter_buffer
    add = jitter_buffer.add

    def add_and_drop(packet: Any) -> tuple[bool, None]:
        pli_flag, frame = add(packet)
        if frame is not None and is_h264_keyframe(bytes(frame.data)):
            on_keyframe()
        return pli_flag, None

    receive = receiver.receive

    async def receive_without_decoding(parameters: Any) -> None:
        await receive(parameters)
        receiver._RTCRtpReceiver__stop_decoder()

    jitter_buffer.add = add_and_drop
    receiver.receive = receive_without_decoding


@dataclass
class WhepViewer:
    connected: bool = False
    asked_s: float = 0.0
    first_keyframe_ms: int | None = None
    error: str = ""
    pc: RTCPeerConnection | None = None

    async def watch(self, client: NodeClient, room_id: str) -> None:
        self.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        connected = asyncio.Event()

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected":
                connected.set()

        self.asked_s = time.monotonic()
        for kind in ("video", "audio"):
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            count_without_decoding(transceiver.receiver, self._on_keyframe)
        try:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            answer, _ = await client.offer_sdp(f"/whep/{room_id}", "", self.pc.localDescription.sdp)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            await asyncio.wait_for(connected.wait(), WHEP_CONNECT_S_MAX)
            self.connected = True
        except Exception as exc:  # any failure is this viewer's figure, not the run's end
            self.error = f"{type(exc).__name__}: {exc}"[:200]

    def _on_keyframe(self) -> None:
        if self.first_keyframe_ms is None:
            self.first_keyframe_ms = round(1000 * (time.monotonic() - self.asked_s))

    async def figures(self) -> dict[str, Any]:
        found: dict[str, Any] = {"connected": self.connected, "error": self.error,
                                 "first_keyframe_ms": self.first_keyframe_ms}
        if self.pc is None:
            return found
        for stats in (await self.pc.getStats()).values():
            if getattr(stats, "type", "") == "inbound-rtp":
                found[f"{stats.kind}_packets"] = stats.packetsReceived
                found[f"{stats.kind}_lost"] = stats.packetsLost
            elif getattr(stats, "type", "") == "transport":  # aiortc counts bytes per transport only
                found["bytes"] = found.get("bytes", 0) + stats.bytesReceived
        return found

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()


@dataclass
class HlsPuller:
    playlists: int = 0
    segments: int = 0
    bytes: int = 0
    errors: int = 0
    first_segment_ms: int | None = None
    seen: set[str] = field(default_factory=set)

    async def pull(self, http: aiohttp.ClientSession, base_url: str, room_id: str, stop: asyncio.Event) -> None:
        started = time.monotonic()
        playlist_url = f"{base_url}/hls/{room_id}/index.m3u8"
        while not stop.is_set():
            try:
                async with http.get(playlist_url) as response:
                    text = await response.text() if response.status == 200 else ""
                self.playlists += bool(text)
                for segment in m3u8.loads(text, uri=playlist_url).segments if text else []:
                    if segment.absolute_uri in self.seen or len(self.seen) >= HLS_SEGMENTS_SEEN_MAX:
                        continue
                    self.seen.add(segment.absolute_uri)
                    async with http.get(segment.absolute_uri) as response:
                        body = await response.read()
                    self.segments += response.status == 200
                    self.bytes += len(body)
                    if self.first_segment_ms is None and response.status == 200:
                        self.first_segment_ms = round(1000 * (time.monotonic() - started))
            except (aiohttp.ClientError, TimeoutError):
                self.errors += 1
            try:
                await asyncio.wait_for(stop.wait(), HLS_POLL_S)
            except TimeoutError:
                pass

    def figures(self) -> dict[str, Any]:
        found = asdict(self)
        del found["seen"]
        return found


async def go_live(http: aiohttp.ClientSession, base_url: str, room_id: str, stream_key: str) -> WhipSession:
    """Publish the demo's test picture and tone to the room over WHIP; the stream is live once media flows."""
    return await WhipSession.open(NodeClient(base_url, http), DemoStream(int(room_id), "load test"), stream_key)


async def end_broadcast(http: aiohttp.ClientSession, base_url: str, session: WhipSession) -> None:
    await session.close(NodeClient(base_url, http))


class Spectators:
    """The run's WHEP viewers and HLS pullers, spread over the rooms."""

    def __init__(self, base_url: str, rooms: list[str], whep: int, hls: int) -> None:
        self.base_url = base_url
        self.rooms = rooms
        self.whep = [WhepViewer() for _ in range(whep)]
        self.hls = [HlsPuller() for _ in range(hls)]
        self.stop = asyncio.Event()
        self.pulls: list[asyncio.Task[None]] = []

    async def start(self, http: aiohttp.ClientSession) -> None:
        client = NodeClient(self.base_url, http)
        await asyncio.gather(*(viewer.watch(client, self.rooms[n % len(self.rooms)])
                               for n, viewer in enumerate(self.whep)))
        self.pulls = [asyncio.create_task(puller.pull(http, self.base_url, self.rooms[n % len(self.rooms)], self.stop))
                      for n, puller in enumerate(self.hls)]
        self.started_s = time.monotonic()

    async def finish(self) -> dict[str, Any]:
        """Stop, and each viewer's and puller's figures, with bitrates over the time they ran."""
        self.stop.set()
        await asyncio.gather(*self.pulls)
        seconds = max(1e-6, time.monotonic() - getattr(self, "started_s", time.monotonic()))
        whep = [await viewer.figures() for viewer in self.whep]
        for viewer in self.whep:
            await viewer.close()
        for figures in whep:
            figures["kbit_s"] = round(8 * figures.get("bytes", 0) / seconds / 1000, 1)
            packets, lost = figures.get("video_packets", 0), figures.get("video_lost", 0)
            figures["video_loss"] = round(lost / (packets + lost), 4) if packets + lost else None
        hls = [puller.figures() for puller in self.hls]
        for figures in hls:
            figures["kbit_s"] = round(8 * figures["bytes"] / seconds / 1000, 1)
        keyframe_ms = sorted(v["first_keyframe_ms"] for v in whep if v["first_keyframe_ms"] is not None)
        return {"whep": whep, "hls": hls, "seconds": round(seconds, 1), "first_keyframe_ms": keyframe_ms}
