"""The demo creator going live: the test picture (H.264, encoded here with PyAV) and a tone (Opus, by aiortc),
published over WHIP with the stream key the API gave, exactly as OBS or the studio page would.

The video is encoded by this module rather than by aiortc's encoder so the CPU cost is chosen here (a fast x264
preset); aiortc then only packetizes. Such a track cannot honour keyframe requests, so it sends a keyframe every
KEYFRAME_INTERVAL_S: a new viewer (or HLS segment) waits at most that long for a picture.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import time

import aiohttp
import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from livecore.demo.client import NodeClient, NodeRefusal
from livecore.demo.picture import SAMPLE_RATE_HZ, DemoPicture, tone
from livecore.demo.stage import DemoStream, Stage
from livecore.seed import DEMO_CREATOR, DemoAccount
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.demo")

DEMO_STREAM_TITLE = "livecore demo: test picture, chat and gifts"
FRAME_RATE_PER_S = 20
KEYFRAME_INTERVAL_S = 1
VIDEO_BITRATE_BPS = 600_000  # x264 lands near 500 kbit/s on this picture: sharp, and a modest recording
X264_PRESET = "superfast"  # about a tenth of a core at 720p20 on the 2-core test machine
AUDIO_FRAME_SAMPLES = SAMPLE_RATE_HZ // 50  # 20 ms
CONNECT_S_MAX = 15.0  # from the WHIP answer to a connected peer connection
STATE_POLL_S = 2.0  # how often the live stream's state is read, to notice it ended
RETRY_S_MAX = 30.0  # the longest wait between attempts to go live
RESTART_PAUSE_S = 2.0  # between a session that ended and the next one, so a stream that keeps ending cannot spin


class PictureTrack(MediaStreamTrack):
    """The test picture, paced to the wall clock and encoded to H.264 packets (frames are skipped, never queued,
    when the machine falls behind)."""

    kind = "video"

    def __init__(self, title: str) -> None:
        super().__init__()
        self.picture = DemoPicture(title)
        self.encoder = _h264_encoder(self.picture.width, self.picture.height)
        self.time_base = fractions.Fraction(1, FRAME_RATE_PER_S)
        self.index = -1
        self.started_s: float | None = None
        self.pending: collections.deque[av.Packet] = collections.deque()

    async def recv(self) -> av.Packet:  # type: ignore[override]  # aiortc accepts packets and packs them as is
        while not self.pending:
            index = await self._next_frame_index()
            self.pending.extend(await asyncio.to_thread(self._encode, index, time.time()))
        return self.pending.popleft()

    async def _next_frame_index(self) -> int:
        now_s = asyncio.get_running_loop().time()
        if self.started_s is None:
            self.started_s = now_s
        self.index = max(self.index + 1, int((now_s - self.started_s) * FRAME_RATE_PER_S))
        wait_s = self.started_s + self.index / FRAME_RATE_PER_S - now_s
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        return self.index

    def _encode(self, index: int, now_s: float) -> list[av.Packet]:
        frame = av.VideoFrame.from_ndarray(self.picture.frame(index, now_s), format="yuv420p")
        frame.pts = index
        frame.time_base = self.time_base
        packets = self.encoder.encode(frame)
        for packet in packets:
            packet.time_base = self.time_base
        return packets


def _h264_encoder(width: int, height: int) -> av.VideoCodecContext:
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.framerate = fractions.Fraction(FRAME_RATE_PER_S, 1)
    codec.time_base = fractions.Fraction(1, FRAME_RATE_PER_S)
    codec.bit_rate = VIDEO_BITRATE_BPS
    codec.gop_size = keyint = FRAME_RATE_PER_S * KEYFRAME_INTERVAL_S
    # Baseline, level 3.1: what every WebRTC browser decodes (aiortc offers profile-level-id 42e01f).
    codec.options = {"preset": X264_PRESET, "tune": "zerolatency", "level": "31",
                     "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0"}
    codec.profile = "Baseline"
    return codec  # type: ignore[no-any-return]


class ToneTrack(MediaStreamTrack):
    """The demo's sound: a short beep on every second of the wall clock, in 20 ms frames."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.started_s: float | None = None
        self.first_sample = 0

    async def recv(self) -> av.AudioFrame:  # type: ignore[override]
        now_s = asyncio.get_running_loop().time()
        if self.started_s is None:
            self.started_s = now_s
            self.first_sample = int(time.time() * SAMPLE_RATE_HZ)
        wait_s = self.started_s + self.sent / SAMPLE_RATE_HZ - now_s
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        samples = tone(self.first_sample + self.sent, AUDIO_FRAME_SAMPLES)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE_HZ
        frame.pts = self.sent
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE_HZ)
        self.sent += AUDIO_FRAME_SAMPLES
        return frame


class WhipSession:
    """One publishing session: a peer connection sending the demo tracks, and its WHIP resource on the node."""

    def __init__(self, stream: DemoStream, pc: RTCPeerConnection, stream_key: str) -> None:
        self.stream = stream
        self.pc = pc
        self.stream_key = stream_key
        self.path = ""
        self.connected = asyncio.Event()
        self.lost = asyncio.Event()  # the peer connection failed or closed
        self.closed = False

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected":
                self.connected.set()
            elif pc.connectionState in ("failed", "closed"):
                self.lost.set()

    @classmethod
    async def open(cls, client: NodeClient, stream: DemoStream, stream_key: str) -> WhipSession:
        """Offer the demo tracks to the stream's WHIP endpoint and wait until media flows."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        session = cls(stream, pc, stream_key)
        try:
            video = pc.addTransceiver(PictureTrack(stream.title), direction="sendonly")
            video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                       if c.mimeType == "video/H264"])
            pc.addTransceiver(ToneTrack(), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            answer, session.path = await client.offer_sdp(f"/whip/{stream.id}", stream_key, pc.localDescription.sdp)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            await asyncio.wait_for(session.connected.wait(), CONNECT_S_MAX)
        except BaseException:
            await session.close(client)
            raise
        return session

    async def close(self, client: NodeClient) -> None:
        """End the WHIP session (the stream ends with it) and the peer connection. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        if self.path:
            try:
                await client.delete(self.path, self.stream_key)
            except (NodeRefusal, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("demo: ending WHIP session %s: %s", self.path, exc)
        await self.pc.close()


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait_s = state.next_action.sleep if state.next_action else 0
    log.warning("demo: could not go live (%s: %s); trying again in %.0f s", type(error).__name__, error, wait_s)


class Publisher:
    """Keeps the demo creator live: reuses their live stream or starts one, publishes, and starts over (after a
    bounded backoff when something failed) whenever the stream ends or the connection drops."""

    def __init__(self, client: NodeClient, stage: Stage, account: DemoAccount = DEMO_CREATOR,
                 title: str = DEMO_STREAM_TITLE) -> None:
        self.client = client
        self.stage = stage
        self.account = account
        self.title = title
        self.session: WhipSession | None = None
        self._token: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="demo publisher")

    async def stop(self) -> None:
        await stop_tasks(self._task)
        await self._end_session()

    async def _run(self) -> None:
        while True:
            session = await self._go_live()
            await self._stay_live(session)
            await self.stage.go_off_air()
            await self._end_session()
            await asyncio.sleep(RESTART_PAUSE_S)

    async def _go_live(self) -> WhipSession:
        retrying = AsyncRetrying(retry=retry_if_exception_type(Exception), before_sleep=_log_retry,
                                 wait=wait_exponential_jitter(initial=1, max=RETRY_S_MAX))
        return await retrying(self._try_to_go_live)

    async def _try_to_go_live(self) -> WhipSession:
        try:
            stream, key = await self._live_stream()
        except NodeRefusal as exc:
            if exc.status == 401:
                self._token = None  # expired: log in again next time
            raise
        self.session = await WhipSession.open(self.client, stream, key)
        await self.stage.go_live(stream)
        log.info("demo: publishing the test picture to stream %d", stream.id)
        return self.session

    async def _live_stream(self) -> tuple[DemoStream, str]:
        """The demo creator's live stream and its key: one that is still live (after a restart), else a new one."""
        if self._token is None:
            self._token = await self.client.log_in(self.account.username, self.account.password)
        live = await self.client.call("GET", "/api/live")
        for listed in live["streams"]:
            if listed["creator"]["username"] != self.account.username:
                continue
            ingest = await self.client.call("GET", f"/api/streams/{listed['id']}/ingest", self._token)
            if ingest["state"] == "live":
                return DemoStream(listed["id"], listed["title"]), ingest["stream_key"]
        created = await self.client.call("POST", "/api/streams", self._token, {"title": self.title})
        log.info("demo: started stream %d", created["id"])
        return DemoStream(created["id"], created["title"]), created["stream_key"]

    async def _stay_live(self, session: WhipSession) -> None:
        """Return when the connection is lost or the stream has ended (by its creator, or by the node)."""
        while True:
            try:
                await asyncio.wait_for(session.lost.wait(), STATE_POLL_S)
                log.info("demo: the connection to stream %d was %s", session.stream.id, session.pc.connectionState)
                return
            except TimeoutError:
                pass
            try:
                state = (await self.client.call("GET", f"/api/streams/{session.stream.id}"))["state"]
            except NodeRefusal as exc:
                state = "ended" if exc.status == 404 else "unknown"
            except (aiohttp.ClientError, TimeoutError):
                state = "unknown"
            if state == "ended":
                log.info("demo: stream %d ended", session.stream.id)
                return

    async def _end_session(self) -> None:
        if self.session is not None:
            await self.session.close(self.client)
            self.session = None
