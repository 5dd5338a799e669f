"""Media forwarding benchmark: livecore's packet forwarder against aiortc's stock paths, over loopback.

One publisher sends a pre-encoded 720p H.264 stream (about 1.5 Mbit/s, 30 fps, a keyframe every 2 s, encoded
once with PyAV and looped, so publishing is cheap); N receive-only viewers in other processes count RTP packets
without decoding. The server runs in its own process and its CPU time is read with psutil. Three servers:

- livecore: `livecore serve` on its embedded defaults (WHIP in, WHEP out, packets forwarded; HLS and the
            recording are made too, and the publisher's packets are received over WebRTC);
- stock:    a plain aiortc server, one RTCPeerConnection per viewer whose track yields the same av.Packets
            (aiortc packetizes them per viewer; there is no publisher, the server reads the packets itself);
- relay:    aiortc's MediaRelay: the publisher's video decoded once and encoded again for every viewer.

All servers run on uvloop, as `livecore serve` does. For each viewer count livecore and stock are measured one
after the other, so that the machine's other load drifts as little as possible between the two figures that make
a ratio. Printed per run: packets delivered to viewers per second, server CPU (user and system), per server
CPU-second, viewer loss, keyframe wait on join.
Run: `.venv/bin/python benchmarks/media_forwarding.py --viewers 10 20 --relay-viewers 4 --seconds 10`.
Everything binds to 127.0.0.1; the whole run stays under about three minutes with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import multiprocessing as mp
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import av
import psutil
from aiohttp import web
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from livecore.embedded import free_port
from livecore.media import peers, rtp

WIDTH, HEIGHT, FPS, GOP_FRAMES, SECONDS_ENCODED = 1280, 720, 30, 60, 4
BITRATE = 1_500_000
VIDEO_TIME_BASE = fractions.Fraction(1, 90_000)
VIEWERS_PER_PROCESS_MAX = 10
VIEWER_QUEUE_FRAMES_MAX = 60  # stock server: a viewer track further behind than this loses frames


def encode_clip(path: Path) -> int:
    """Encode SECONDS_ENCODED of FFmpeg's testsrc2 at 720p once; returns the bitrate in bit/s."""
    source = av.open(f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}", format="lavfi")
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.framerate = FPS
    encoder.bit_rate = BITRATE
    encoder.options = {"preset": "veryfast", "tune": "zerolatency", "profile": "baseline",
                       "x264-params": f"keyint={GOP_FRAMES}:min-keyint={GOP_FRAMES}:scenecut=0:bframes=0:"
                                      f"vbv-maxrate={BITRATE // 1000}:vbv-bufsize={BITRATE // 1000}:repeat-headers=1"}
    frames: list[bytes] = []
    for index, frame in enumerate(source.decode(video=0)):
        if index >= FPS * SECONDS_ENCODED:
            break
        frame = frame.reformat(format="yuv420p")
        frame.pts = index
        frame.pict_type = av.video.frame.PictureType.NONE  # let the GOP decide where keyframes go
        frames += [bytes(p) for p in encoder.encode(frame)]
    frames += [bytes(p) for p in encoder.encode(None)]
    source.close()
    path.write_bytes(pickle.dumps(frames))
    return sum(len(f) for f in frames) * 8 // SECONDS_ENCODED


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def prefer_h264(transceiver: Any) -> None:
    codecs = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType == "video/H264"]
                                    + [c for c in codecs if c.mimeType == "video/rtx"])


class ClipTrack(MediaStreamTrack):
    """Yields the pre-encoded frames as av.Packets in real time, looping with ever-growing timestamps."""

    kind = "video"

    def __init__(self, frames: list[bytes]) -> None:
        super().__init__()
        self._frames = frames
        self._count = 0
        self._start = 0.0

    async def recv(self) -> av.Packet:
        if not self._count:
            self._start = time.monotonic()
        wait_s = self._start + self._count / FPS - time.monotonic()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        packet = av.Packet(self._frames[self._count % len(self._frames)])
        packet.pts = self._count * (90_000 // FPS)
        packet.time_base = VIDEO_TIME_BASE
        self._count += 1
        return packet


class QueueTrack(MediaStreamTrack):
    """The stock server's per-viewer track: av.Packets from the shared clip reader."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[av.Packet] = asyncio.Queue(VIEWER_QUEUE_FRAMES_MAX)

    async def recv(self) -> av.Packet:
        return await self.queue.get()


# --- servers (each in its own process) ---------------------------------------------------------------------------

async def _answer(pc: RTCPeerConnection) -> web.Response:
    await pc.setLocalDescription(await pc.createAnswer())
    return web.Response(status=201, text=pc.localDescription.sdp, content_type="application/sdp",
                        headers={"Location": "/session"})


def run_aiortc_server(mode: str, port: int, clip: Path) -> None:
    """`stock`: every viewer's sender packetizes the clip's av.Packets; `relay`: MediaRelay of the publisher."""
    import uvloop

    uvloop.install()  # the event loop `livecore serve` runs on, so that only the forwarding differs
    frames: list[bytes] = pickle.loads(clip.read_bytes())
    pcs: list[RTCPeerConnection] = []
    tracks: list[QueueTrack] = []
    relay = MediaRelay()
    source: dict[str, MediaStreamTrack] = {}

    async def whip(request: web.Request) -> web.Response:
        pc = new_pc()
        pcs.append(pc)
        pc.on("track", lambda track: source.setdefault("video", track))
        await pc.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
        return await _answer(pc)

    async def whep(request: web.Request) -> web.Response:
        pc = new_pc()
        pcs.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
        if mode == "stock":
            track: MediaStreamTrack = QueueTrack()
            tracks.append(track)  # type: ignore[arg-type]
        else:
            track = relay.subscribe(source["video"], buffered=False)
        pc.addTrack(track)
        return await _answer(pc)

    async def feed() -> None:
        clip_track = ClipTrack(frames)
        while True:
            packet = await clip_track.recv()
            for track in tracks:
                with contextlib.suppress(asyncio.QueueFull):
                    track.queue.put_nowait(packet)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/whip/{id}", whip)
        app.router.add_post("/whep/{id}", whep)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        feeders = [asyncio.create_task(feed())] if mode == "stock" else []
        await asyncio.Event().wait()
        feeders.clear()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def run_publisher(whip_url: str, key: str, clip: Path, ready: Any) -> None:
    frames: list[bytes] = pickle.loads(clip.read_bytes())

    async def main() -> None:
        pc = new_pc()
        prefer_h264(pc.addTransceiver(ClipTrack(frames), direction="sendonly"))
        await pc.setLocalDescription(await pc.createOffer())
        async with aiohttp.ClientSession() as http, http.post(
                whip_url, data=pc.localDescription.sdp,
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {key}"}) as response:
            body = await response.text()
            assert response.status == 201, f"WHIP refused: {response.status} {body[:200]}"
        await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
        ready.set()
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# --- viewers ---------------------------------------------------------------------------------------------------

class PacketCounter:
    """Stands in for a forwarder on a tapped receiver: counts packets by extended sequence number, no decode."""

    def __init__(self) -> None:
        self.keyframes = SimpleNamespace(_send=None)
        self.frame_sinks: list[Any] = []
        self.connected_s: float | None = None
        self.keyframe_wait_s: float | None = None
        self.counting = False
        self.sequence_numbers: set[int] = set()
        self._last: int | None = None

    def forward_packet(self, packet: Any) -> None:
        if self.keyframe_wait_s is None and self.connected_s is not None and rtp.h264_starts_keyframe(packet.payload):
            self.keyframe_wait_s = time.monotonic() - self.connected_s
        sequence_number = packet.sequence_number
        if self._last is None:
            extended = sequence_number
        else:
            delta = (sequence_number - self._last) & 0xFFFF
            extended = self._last + delta if delta < 0x8000 else self._last - (0x10000 - delta)
        if self._last is None or extended > self._last:
            self._last = extended
        if self.counting:
            self.sequence_numbers.add(extended)


async def _join(http: aiohttp.ClientSession, whep_url: str) -> tuple[RTCPeerConnection, PacketCounter]:
    pc = new_pc()
    transceiver = pc.addTransceiver("video", direction="recvonly")
    prefer_h264(transceiver)  # every server then sends H.264: aiortc answers with the offer's codecs only
    counter = PacketCounter()

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState == "connected" and counter.connected_s is None:
            counter.connected_s = time.monotonic()

    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(whep_url, data=pc.localDescription.sdp,
                         headers={"Content-Type": "application/sdp"}) as response:
        body = await response.text()
        assert response.status == 201, f"WHEP refused: {response.status} {body[:200]}"
    await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
    peers.tap_receiver(transceiver, counter)  # type: ignore[arg-type]
    return pc, counter


async def until(predicate: Any, timeout_s: float = 600) -> None:
    """Poll a condition that lives outside this event loop (a multiprocessing event, a counter)."""
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:  # noqa: ASYNC110 - nothing here can be awaited
        await asyncio.sleep(0.01)


def run_viewers(whep_url: str, count: int, ready: Any, start: Any, stop: Any, results: Any) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            joined = [await _join(http, whep_url) for _ in range(count)]
            await until(lambda: all(c.keyframe_wait_s is not None for _, c in joined), 15)
            ready.release()
            await until(start.is_set)
            for _, counter in joined:
                counter.counting = True
            await until(stop.is_set)
            for _, counter in joined:
                counter.counting = False
            report = []
            for _, counter in joined:
                numbers = counter.sequence_numbers
                expected = (max(numbers) - min(numbers) + 1) if numbers else 0
                report.append((len(numbers), expected, counter.keyframe_wait_s))
            results.put(report)
            for pc, _ in joined:
                await pc.close()

    asyncio.run(main())


# --- one run ---------------------------------------------------------------------------------------------------

@dataclass
class Result:
    server: str
    viewers: int
    packets_per_s: float
    cpu_s_per_s: float
    loss_pct: float
    keyframe_wait_ms: tuple[float, float]
    system_s_per_s: float = 0.0

    @property
    def per_cpu_s(self) -> float:
        return self.packets_per_s / self.cpu_s_per_s if self.cpu_s_per_s else float("inf")


def measure(server: str, server_pid: int, whep_url: str, viewers: int, seconds: float) -> Result:
    context = mp.get_context("spawn")
    ready, start, stop, results = context.Semaphore(0), context.Event(), context.Event(), context.Queue()
    sizes = [VIEWERS_PER_PROCESS_MAX] * (viewers // VIEWERS_PER_PROCESS_MAX)
    sizes += [viewers % VIEWERS_PER_PROCESS_MAX] if viewers % VIEWERS_PER_PROCESS_MAX else []
    processes = [context.Process(target=run_viewers, args=(whep_url, size, ready, start, stop, results))
                 for size in sizes]
    for process in processes:
        process.start()
    for _ in processes:
        if not ready.acquire(timeout=60):
            raise RuntimeError("viewers did not join in time")
    time.sleep(1.0)  # let the joins' keyframe requests and RTCP settle
    cpu = psutil.Process(server_pid)
    before = cpu.cpu_times()
    started_s = time.monotonic()
    start.set()
    time.sleep(seconds)
    stop.set()
    elapsed_s = time.monotonic() - started_s
    after = cpu.cpu_times()
    reports = [entry for _ in processes for entry in results.get(timeout=60)]
    for process in processes:
        process.join(30)
    received = sum(r[0] for r in reports)
    expected = sum(r[1] for r in reports)
    waits = sorted(r[2] * 1000 for r in reports if r[2] is not None)
    system_s = after.system - before.system
    cpu_s = (after.user - before.user) + system_s
    return Result(server, viewers, received / elapsed_s, cpu_s / elapsed_s,
                  100 * (1 - received / expected) if expected else 100.0 if viewers else 0.0,
                  (statistics.median(waits), waits[-1]) if waits else (float("nan"), float("nan")),
                  system_s / elapsed_s)


def wait_http(url: str, timeout_s: float = 90) -> None:
    async def poll() -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url) as response:
                        if response.status < 500:
                            return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not come up")
                await asyncio.sleep(0.2)

    asyncio.run(poll())


def new_livecore_stream(base_url: str) -> tuple[int, str]:
    async def create() -> tuple[int, str]:
        async with aiohttp.ClientSession() as http:
            name = f"bench_{os.getpid()}_{time.monotonic_ns() % 10**9}"
            async with http.post(f"{base_url}/api/accounts", json={
                    "username": name, "password": "benchmark password", "birth_date": "1990-01-01",
                    "region": "US"}) as response:
                token = (await response.json())["token"]
            async with http.post(f"{base_url}/api/streams", json={"title": "benchmark"},
                                 headers={"Authorization": f"Bearer {token}"}) as response:
                stream = await response.json()
        return stream["id"], stream["stream_key"]

    return asyncio.run(create())


def with_publisher(whip_url: str, key: str, clip: Path) -> Any:
    context = mp.get_context("spawn")
    ready = context.Event()
    publisher = context.Process(target=run_publisher, args=(whip_url, key, clip, ready), daemon=True)
    publisher.start()
    if not ready.wait(30):
        raise RuntimeError("the publisher could not go live")
    time.sleep(2.0)  # the first keyframe and the room's forwarders are up
    return publisher


def stop_process(process: Any) -> None:
    process.terminate()
    process.join(10)


class LivecoreServer:
    """`livecore serve` in its own process, on its embedded defaults; a new stream and publisher per measurement."""

    def __init__(self, clip: Path, data_dir: Path) -> None:
        self.clip = clip
        self.data_dir = data_dir
        self.base = f"http://127.0.0.1:{free_port()}"
        self.log_path = data_dir.parent / "livecore.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LivecoreServer:
        port = self.base.rsplit(":", 1)[1]
        command = [sys.executable, "-m", "livecore", "serve", "--host", "127.0.0.1", "--port", port,
                   "--data-dir", str(self.data_dir), "--public-url", self.base, "--seed-demo", "false",
                   "--media-viewers-per-room-max", "1000", "--media-viewers-per-node-max", "1000", "--workers", "1"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"{self.base}/healthz")
        except Exception:
            print(self.log_path.read_text()[-3000:], file=sys.stderr)
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)

    def measure(self, viewers: int, seconds: float) -> Result:
        assert self.process is not None
        stream_id, key = new_livecore_stream(self.base)
        publisher = with_publisher(f"{self.base}/whip/{stream_id}", key, self.clip)
        try:
            return measure("livecore", self.process.pid, f"{self.base}/whep/{stream_id}", viewers, seconds)
        except Exception:
            print(self.log_path.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            stop_process(publisher)


def run_aiortc(mode: str, viewers: int, seconds: float, clip: Path) -> Result:
    context = mp.get_context("spawn")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = context.Process(target=run_aiortc_server, args=(mode, port, clip), daemon=True)
    server.start()
    publisher = None
    try:
        wait_http(f"{base}/")
        if mode == "relay":
            publisher = with_publisher(f"{base}/whip/1", "unused", clip)
        return measure(mode, server.pid, f"{base}/whep/1", viewers, seconds)
    finally:
        if publisher is not None:
            stop_process(publisher)
        stop_process(server)


def print_result(result: Result) -> None:
    print(f"  {result.server:<9} viewers={result.viewers:<3} {result.packets_per_s:8.0f} pkt/s  "
          f"cpu={result.cpu_s_per_s:5.3f} s/s (system {result.system_s_per_s:5.3f})  "
          f"{result.per_cpu_s:8.0f} pkt/CPU-s  loss={result.loss_pct:5.2f}%  "
          f"keyframe wait median/max={result.keyframe_wait_ms[0]:.0f}/{result.keyframe_wait_ms[1]:.0f} ms",
          flush=True)


def print_table(results: list[Result]) -> None:
    print("\n| server | viewers | delivered pkt/s | server CPU s/s (system) | pkt per CPU-s | viewer loss | "
          "keyframe wait median / max |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        wait_ms = r.keyframe_wait_ms
        print(f"| {r.server} | {r.viewers} | {r.packets_per_s:.0f} | {r.cpu_s_per_s:.3f} ({r.system_s_per_s:.3f}) | "
              f"{r.per_cpu_s:.0f} | {r.loss_pct:.2f} % | {wait_ms[0]:.0f} / {wait_ms[1]:.0f} ms |")
    by_key = {(r.server, r.viewers): r for r in results}
    print()
    for r in results:
        if r.server != "livecore" or not r.viewers:
            continue
        for other in ("stock", "relay"):
            base = by_key.get((other, r.viewers))
            if base is not None:
                print(f"livecore / {other} at {r.viewers} viewers: {r.per_cpu_s / base.per_cpu_s:.1f}x "
                      "packets per server CPU-second")
    for r in results:  # with a 0-viewer run: the fixed cost (livecore: ingest, HLS, recording) and the rest
        idle = by_key.get((r.server, 0))
        if idle is not None and r.viewers and r.packets_per_s:
            print(f"{r.server} at {r.viewers} viewers: {idle.cpu_s_per_s:.3f} CPU s/s with no viewers, then "
                  f"{1e6 * (r.cpu_s_per_s - idle.cpu_s_per_s) / r.packets_per_s:.1f} µs per delivered packet")
    for relay in (r for r in results if r.server == "relay"):
        best = max((r for r in results if r.server == "livecore"), key=lambda r: r.per_cpu_s, default=None)
        if best is not None:
            print(f"livecore ({best.viewers} viewers) / relay ({relay.viewers} viewers): "
                  f"{best.per_cpu_s / relay.per_cpu_s:.1f}x packets per server CPU-second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[10, 20],
                        help="viewer counts (default 10 20); 0 measures what a server costs with none")
    parser.add_argument("--relay-viewers", type=int, nargs="*", default=[4],
                        help="viewer counts for MediaRelay, which re-encodes per viewer (default 4; none to skip)")
    parser.add_argument("--seconds", type=float, default=10, help="measured window per run (default 10)")
    parser.add_argument("--servers", nargs="+", default=["livecore", "stock", "relay"],
                        choices=["livecore", "stock", "relay"])
    args = parser.parse_args()
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"machine: {os.cpu_count()} CPUs; server CPU = user + system time of the server process only")
    work = Path(tempfile.mkdtemp(prefix="livecore-bench-"))
    try:
        clip = work / "clip.pickle"
        bitrate = encode_clip(clip)
        print(f"clip: {WIDTH}x{HEIGHT} H.264 baseline, {FPS} fps, keyframe every {GOP_FRAMES // FPS} s, "
              f"{bitrate / 1e6:.2f} Mbit/s, {SECONDS_ENCODED} s looped")
        results: list[Result] = []
        with contextlib.ExitStack() as stack:
            livecore = (stack.enter_context(LivecoreServer(clip, work / "livecore"))
                        if "livecore" in args.servers else None)
            for viewers in args.viewers:
                if livecore is not None:
                    results.append(livecore.measure(viewers, args.seconds))
                    print_result(results[-1])
                if "stock" in args.servers:
                    results.append(run_aiortc("stock", viewers, args.seconds, clip))
                    print_result(results[-1])
        if "relay" in args.servers:
            for viewers in args.relay_viewers:
                results.append(run_aiortc("relay", viewers, args.seconds, clip))
                print_result(results[-1])
        print_table(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
