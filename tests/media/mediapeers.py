"""Real aiortc peers for the media tests: a WHIP publisher of generated video and audio, and WHEP viewers that
decode what they receive."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from dataclasses import dataclass, field

import aiohttp
import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack

WIDTH, HEIGHT, FPS = 160, 120, 15
VIDEO_CLOCK = 90_000


class PatternTrack(MediaStreamTrack):
    """Tiny moving test video: a bar that walks across a grey frame, 15 frames a second."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        self._count += 1
        wait = self._start + self._count / FPS - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = pattern_frame(self._count)
        frame.pts = self._count * (VIDEO_CLOCK // FPS)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


def pattern_frame(count: int) -> av.VideoFrame:
    """Picture number `count` of the pattern: the bar 4 pixels further right each time."""
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    x = (count * 4) % WIDTH
    luma = bytearray(b"\x60" * (WIDTH * HEIGHT))
    for row in range(HEIGHT):
        luma[row * WIDTH + x: row * WIDTH + min(x + 16, WIDTH)] = b"\xe0" * (min(x + 16, WIDTH) - x)
    frame.planes[0].update(bytes(luma))
    frame.planes[1].update(b"\x80" * (WIDTH * HEIGHT // 4))
    frame.planes[2].update(b"\x80" * (WIDTH * HEIGHT // 4))
    return frame


def encode_clip(frames: int, keyframe_interval_frames: int) -> list[bytes]:
    """The pattern video encoded once with x264 at a fixed keyframe interval (no scene cuts): H.264 access units."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.framerate = FPS
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline",
                       "x264-params": f"keyint={keyframe_interval_frames}:min-keyint={keyframe_interval_frames}:"
                                      "scenecut=0:bframes=0:repeat-headers=1"}
    units: list[bytes] = []
    for index in range(frames):
        frame = pattern_frame(index)
        frame.pts, frame.time_base = index, fractions.Fraction(1, FPS)
        units += [bytes(p) for p in encoder.encode(frame)]
    units += [bytes(p) for p in encoder.encode(None)]
    return units


class ClipTrack(MediaStreamTrack):
    """Pre-encoded video sent in real time: its keyframes come where the clip has them, whatever a receiver asks."""

    kind = "video"

    def __init__(self, units: list[bytes]) -> None:
        super().__init__()
        self._units = units
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._count / FPS - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self._units[self._count % len(self._units)])
        packet.pts = self._count * (VIDEO_CLOCK // FPS)
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return packet


def _prefer(pc_transceiver, kind: str, mime: str) -> None:  # type: ignore[no-untyped-def]
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    pc_transceiver.setCodecPreferences(
        [c for c in codecs if c.mimeType.lower() == mime.lower()] + [c for c in codecs if c.mimeType.endswith("rtx")]
    )


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


@dataclass
class Publisher:
    pc: RTCPeerConnection
    location: str
    status: int


async def whip_offer(video_mime: str = "video/H264", audio: bool = True,
                     video_track: MediaStreamTrack | None = None) -> RTCPeerConnection:
    pc = new_pc()
    _prefer(pc.addTransceiver(video_track or PatternTrack(), direction="sendonly"), "video", video_mime)
    if audio:
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def publish(http: aiohttp.ClientSession, base_url: str, stream: dict, video_mime: str = "video/H264",
                  key: str | None = None, video_track: MediaStreamTrack | None = None) -> Publisher:
    """Go live over WHIP; asserts nothing, so tests can check refusals too."""
    pc = await whip_offer(video_mime, video_track=video_track)
    headers = {"Authorization": f"Bearer {key or stream['stream_key']}", "Content-Type": "application/sdp"}
    async with http.post(f"{base_url}/whip/{stream['id']}", data=pc.localDescription.sdp,
                         headers=headers) as response:
        body = await response.text()
        if response.status == 201:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        else:
            await pc.close()
        return Publisher(pc, response.headers.get("Location", ""), response.status)


@dataclass
class TrickledOffer:
    """A WHIP offer without its candidates, and the RFC 8840 fragments that trickle them one by one."""

    pc: RTCPeerConnection
    sdp: str
    fragments: list[str]
    end_of_candidates: str


async def trickled_whip_offer() -> TrickledOffer:
    pc = await whip_offer()
    lines = pc.localDescription.sdp.replace("\r\n", "\n").strip().split("\n")
    ufrag = next(line for line in lines if line.startswith("a=ice-ufrag:"))
    pwd = next(line for line in lines if line.startswith("a=ice-pwd:"))
    first_section = [ufrag, pwd, next(line for line in lines if line.startswith("m=")).split(" ")[0] +
                     " 9 UDP/TLS/RTP/SAVPF 0", next(line for line in lines if line.startswith("a=mid:"))]
    candidates = dict.fromkeys(line for line in lines if line.startswith("a=candidate:"))  # BUNDLE repeats them
    fragments = ["\r\n".join([*first_section, candidate, ""]) for candidate in candidates]
    kept = [line for line in lines if not line.startswith(("a=candidate:", "a=end-of-candidates"))]
    return TrickledOffer(pc, "\r\n".join(kept) + "\r\n", fragments,
                         "\r\n".join([*first_section, "a=end-of-candidates", ""]))


@dataclass
class Viewer:
    pc: RTCPeerConnection
    status: int
    location: str = ""
    body: str = ""
    video_pts: list[int] = field(default_factory=list)
    audio_frames: int = 0
    started_at: float = field(default_factory=time.monotonic)
    first_video_at: float | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await self.pc.close()


async def _consume(viewer: Viewer, track: MediaStreamTrack) -> None:
    with contextlib.suppress(Exception):
        while True:
            frame = await track.recv()
            if track.kind == "video":
                if viewer.first_video_at is None:
                    viewer.first_video_at = time.monotonic()
                viewer.video_pts.append(frame.pts)
            else:
                viewer.audio_frames += 1


async def watch(http: aiohttp.ClientSession, base_url: str, stream_id: int, decode: bool = True,
                kinds: tuple[str, ...] = ("video", "audio")) -> Viewer:
    """A WHEP viewer whose offer has one section per kind in `kinds`, in that order."""
    pc = new_pc()
    for kind in kinds:
        pc.addTransceiver(kind, direction="recvonly")
    viewer = Viewer(pc, 0)

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if decode:
            viewer.tasks.append(asyncio.ensure_future(_consume(viewer, track)))

    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(f"{base_url}/whep/{stream_id}", data=pc.localDescription.sdp,
                         headers={"Content-Type": "application/sdp"}) as response:
        viewer.status = response.status
        viewer.body = await response.text()
        viewer.location = response.headers.get("Location", "")
    if viewer.status == 201:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=viewer.body, type="answer"))
        viewer.started_at = time.monotonic()
    else:
        await pc.close()
    return viewer


async def wait_for(predicate, timeout_s: float = 10.0, interval_s: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval_s)
