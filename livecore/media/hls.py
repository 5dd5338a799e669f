"""HLS, the recording and the thumbnail of one stream, made once per stream off the event loop.

The publisher's encoded frames, as the upstream receiver's own jitter buffer reassembles them (see
`peers.tap_receiver`), go to one worker thread per stream. There H.264 is remuxed as it is, VP8 is decoded and
encoded to H.264 once, and Opus becomes AAC. The same frames go to FFmpeg's HLS muxer (about 2 s MPEG-TS
segments, a bounded window on disk, EXT-X-PROGRAM-DATE-TIME) and to a fragmented MP4 recording; a keyframe
becomes a JPEG thumbnail now and then.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from aiortc.jitterbuffer import JitterFrame

from livecore.media.forwarder import Forwarder

log = logging.getLogger("livecore.media.hls")

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
AUDIO_TIME_BASE = fractions.Fraction(1, 48000)
FRAME_QUEUE_MAX = 512  # frames waiting for the worker; past this they are dropped (and counted)


def _annexb_nal_types(data: bytes) -> list[int]:
    types = []
    index = data.find(b"\x00\x00\x01")
    while index >= 0:
        if index + 3 < len(data):
            types.append(data[index + 3] & 0x1F)
        index = data.find(b"\x00\x00\x01", index + 3)
    return types


def _h264_parameter_sets(data: bytes) -> bytes:
    """The Annex-B bytes before the first slice of a keyframe: SPS and PPS, as MP4 extradata."""
    index = data.find(b"\x00\x00\x01")
    while index >= 0:
        if (data[index + 3] & 0x1F) in (1, 5):
            start = index - 1 if index > 0 and data[index - 1] == 0 else index
            return data[:start]
        index = data.find(b"\x00\x00\x01", index + 3)
    return b""


@dataclass
class MediaFiles:
    directory: Path

    @property
    def hls(self) -> Path:
        return self.directory / "hls"

    @property
    def playlist(self) -> Path:
        return self.hls / "index.m3u8"

    @property
    def recording(self) -> Path:
        return self.directory / "recording.mp4"

    @property
    def thumbnail(self) -> Path:
        return self.directory / "thumbnail.jpg"

    def new_take(self) -> Path:
        """Where the recording of a new take goes: the stream's recording, or after a publisher came back within the
        reconnect grace, `recording-2.mp4` and so on beside it."""
        take = 1
        path = self.recording
        while path.exists():
            take += 1
            path = self.directory / f"recording-{take}.mp4"
        return path


class PlaylistWaits:
    """Requests waiting for a stream's first playlist (written with its first segment), woken when it appears."""

    def __init__(self) -> None:
        self._events: dict[int, asyncio.Event] = {}
        self._waiting: dict[int, int] = {}

    async def wait(self, stream_id: int, timeout_s: float) -> bool:
        """True once the stream's playlist has been written, False after `timeout_s`."""
        event = self._events.setdefault(stream_id, asyncio.Event())
        self._waiting[stream_id] = self._waiting.get(stream_id, 0) + 1
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting[stream_id] -= 1
            if not self._waiting[stream_id]:
                del self._waiting[stream_id]
                self._events.pop(stream_id, None)

    def waiting(self, stream_id: int) -> int:
        """How many requests wait for this stream's first playlist."""
        return self._waiting.get(stream_id, 0)

    def written(self, stream_id: int) -> None:
        """The stream's playlist exists now (call on the event loop)."""
        event = self._events.get(stream_id)
        if event is not None:
            event.set()


class StreamOutputs:
    """The sinks on a room's forwarders and the worker thread behind them."""

    def __init__(self, files: MediaFiles, forwarders: dict[str, Forwarder], segment_ms: int, window_segments: int,
                 record: bool, thumbnail_interval_ms: int, on_playlist: Callable[[], None] = lambda: None) -> None:
        self.files = files
        self.dropped_frames = 0
        self.thumbnails = 0
        self._queue: queue.Queue[tuple[str, bytes, int, float] | None] = queue.Queue(FRAME_QUEUE_MAX)
        self._worker = _Worker(files, {k: f.codec.mimeType.lower() for k, f in forwarders.items()}, segment_ms,
                               window_segments, record, thumbnail_interval_ms, self)
        self.on_playlist = on_playlist  # called once from the worker thread when the first playlist is written
        self._thread = threading.Thread(target=self._worker.run, args=(self._queue,), daemon=True,
                                        name=f"media-out-{files.directory.name}")
        for kind, forwarder in forwarders.items():
            forwarder.frame_sinks.append(self._frame_sink(kind))
        files.hls.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def _frame_sink(self, kind: str) -> Any:
        def add_frame(frame: JitterFrame) -> None:
            try:
                self._queue.put_nowait((kind, frame.data, frame.timestamp, time.monotonic()))
            except queue.Full:
                self.dropped_frames += 1

        return add_frame

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish the playlist and the recording (blocking: call it from a thread)."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    @property
    def recorded(self) -> bool:
        return self._worker.recorded


class _Worker:
    def __init__(self, files: MediaFiles, codecs: dict[str, str], segment_ms: int, window_segments: int,
                 record: bool, thumbnail_interval_ms: int, outputs: StreamOutputs) -> None:
        self.files = files
        self.codecs = codecs
        self.segment_ms = segment_ms
        self.window_segments = window_segments
        self.record = record
        self.thumbnail_interval_s = thumbnail_interval_ms / 1000
        self.outputs = outputs
        self.recorded = False
        self._origin_s: float | None = None
        self._first_ts: dict[str, int] = {}
        self._base: dict[str, int] = {}
        self._last_pts: dict[str, int] = {}
        self._containers: list[Any] = []
        self._streams: dict[str, list[Any]] = {}
        self._vp8_decoder: Any = None
        self._x264: Any = None
        self._last_forced_keyframe_s = -1e9
        self._opus: Any = None
        self._resampler: Any = None
        self._aac: Any = None
        self._next_thumbnail_s = 0.0
        self._recording_templates: dict[str, Any] = {}
        self._playlist_written = False

    def run(self, frames: queue.Queue) -> None:
        try:
            while (item := frames.get()) is not None:
                try:
                    self._handle(*item)
                except (av.FFmpegError, ValueError) as exc:
                    log.warning("%s: dropped a frame: %s", self.files.directory.name, exc)
        except Exception:
            log.exception("media output worker failed for %s", self.files.directory)
        finally:
            self._close()

    def _pts(self, kind: str, timestamp: int, arrival_s: float, clock_rate: int) -> int | None:
        if kind not in self._first_ts:
            assert self._origin_s is not None
            self._first_ts[kind] = timestamp
            self._base[kind] = int((arrival_s - self._origin_s) * clock_rate)
        pts = self._base[kind] + ((timestamp - self._first_ts[kind]) & 0xFFFFFFFF)
        if pts <= self._last_pts.get(kind, -1):
            return None
        self._last_pts[kind] = pts
        return pts

    def _handle(self, kind: str, data: bytes, timestamp: int, arrival_s: float) -> None:
        if kind == "video":
            self._handle_video(data, timestamp, arrival_s)
        elif self._containers or "video" not in self.codecs:
            self._handle_audio(data, timestamp, arrival_s)

    def _handle_video(self, data: bytes, timestamp: int, arrival_s: float) -> None:
        if self.codecs["video"] == "video/h264":
            keyframe = 5 in _annexb_nal_types(data)
            if keyframe:
                self._maybe_thumbnail_h264(data, arrival_s)
            if not self._containers:
                if not keyframe:
                    return
                self._open(arrival_s, self._dimensions_h264(data), _h264_parameter_sets(data))
            pts = self._pts("video", timestamp, arrival_s, 90000)
            if pts is not None:
                self._mux("video", data, pts, VIDEO_TIME_BASE, keyframe)
            return
        self._transcode_vp8(data, timestamp, arrival_s)

    def _transcode_vp8(self, data: bytes, timestamp: int, arrival_s: float) -> None:
        if self._vp8_decoder is None:
            self._vp8_decoder = av.CodecContext.create("vp8", "r")
        for frame in self._vp8_decoder.decode(av.Packet(data)):
            if not self._containers:
                self._open(arrival_s, (frame.width, frame.height), None)
            self._maybe_thumbnail(frame, arrival_s)
            pts = self._pts("video", timestamp, arrival_s, 90000)
            if pts is None:
                continue
            frame = frame.reformat(format="yuv420p")
            frame.pts = pts
            frame.time_base = VIDEO_TIME_BASE
            if arrival_s - self._last_forced_keyframe_s >= self.segment_ms / 1000:
                frame.pict_type = av.video.frame.PictureType.I
                self._last_forced_keyframe_s = arrival_s
            for packet in self._x264.encode(frame):
                data = bytes(packet)
                if packet.is_keyframe:
                    # The encoder keeps SPS and PPS in its global header; in band, every muxer finds them.
                    data = bytes(self._x264.extradata or b"") + data
                    if self.record and not self.recorded:
                        self._open_recording(None)
                self._mux("video", data, packet.pts, packet.time_base, packet.is_keyframe, packet.dts)

    def _handle_audio(self, data: bytes, timestamp: int, arrival_s: float) -> None:
        if self.codecs.get("audio") != "audio/opus":
            return
        if not self._containers:
            self._open(arrival_s, None, None)
        if self._opus is None:
            self._opus = av.CodecContext.create("opus", "r")
            self._opus.sample_rate = 48000
            self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000, frame_size=1024)
        pts = self._pts("audio", timestamp, arrival_s, 48000)
        if pts is None:
            return
        for frame in self._opus.decode(av.Packet(data)):
            frame.pts = pts
            frame.time_base = AUDIO_TIME_BASE
            for chunk in self._resampler.resample(frame):
                for packet in self._aac.encode(chunk):
                    self._mux("audio", bytes(packet), packet.pts, packet.time_base, False, packet.dts)

    def _dimensions_h264(self, data: bytes) -> tuple[int, int] | None:
        decoder = av.CodecContext.create("h264", "r")
        frames = decoder.decode(av.Packet(data))
        return (frames[0].width, frames[0].height) if frames else None

    def _open(self, arrival_s: float, dimensions: tuple[int, int] | None, extradata: bytes | None) -> None:
        self._origin_s = arrival_s
        # A publisher back within the reconnect grace continues the playlist (numbering on, after a discontinuity).
        again = "+append_list+discont_start" if self.files.playlist.exists() else ""
        hls = av.open(str(self.files.playlist), "w", format="hls", options={
            "hls_time": f"{self.segment_ms / 1000:g}", "hls_list_size": str(self.window_segments),
            "hls_delete_threshold": "2", "hls_allow_cache": "1",
            "hls_flags": f"delete_segments+program_date_time+independent_segments+temp_file{again}",
            "hls_segment_filename": str(self.files.hls / "seg%06d.ts"),
        })
        self._containers.append(hls)
        templates = self._add_streams(hls, dimensions, extradata)
        self._recording_templates = templates
        # A transcoded (VP8) stream's recording opens on the encoder's first keyframe.
        if self.record and (extradata or "video" not in templates):
            self._open_recording(extradata)

    def _open_recording(self, extradata: bytes | None) -> None:
        """The MP4 needs the H.264 parameter sets up front: the publisher's keyframe or the encoder's header."""
        templates = self._recording_templates
        recording = av.open(str(self.files.new_take()), "w", format="mp4",
                            options={"movflags": "frag_keyframe+empty_moov+default_base_moof"})
        self._containers.append(recording)
        for kind, template in templates.items():
            if kind == "video" and self._x264 is not None:
                # Mux only (a copy of the open encoder would be reopened): PyAV takes SPS and PPS from the keyframe.
                stream = recording.add_mux_stream("h264", rate=30, width=template.width, height=template.height)
            else:
                stream = recording.add_stream_from_template(template)
            if kind == "video" and extradata:
                stream.codec_context.extradata = extradata
            self._streams[kind].append(stream)
        self.recorded = True

    def _add_streams(self, hls: Any, dimensions: tuple[int, int] | None, extradata: bytes | None) -> dict[str, Any]:
        templates: dict[str, Any] = {}
        if "video" in self.codecs and dimensions:
            video = hls.add_stream("h264", rate=30)
            video.width, video.height = dimensions
            video.pix_fmt = "yuv420p"
            video.time_base = VIDEO_TIME_BASE
            if self.codecs["video"] != "video/h264":
                video.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0",
                                               "forced-idr": "1"}
                video.codec_context.time_base = VIDEO_TIME_BASE
                video.codec_context.open()
                self._x264 = video.codec_context
            templates["video"] = video
        if self.codecs.get("audio") == "audio/opus":
            audio = hls.add_stream("aac", rate=48000)
            audio.layout = "stereo"
            audio.codec_context.open()
            self._aac = audio.codec_context
            templates["audio"] = audio
        self._streams = {kind: [stream] for kind, stream in templates.items()}
        return templates

    def _mux(self, kind: str, data: bytes, pts: int, time_base: fractions.Fraction, keyframe: bool,
             dts: int | None = None) -> None:
        for container, stream in zip(self._containers, self._streams.get(kind, []), strict=False):
            packet = av.Packet(data)
            packet.pts = pts
            packet.dts = pts if dts is None else dts
            packet.time_base = time_base
            packet.is_keyframe = keyframe
            packet.stream = stream
            container.mux(packet)
        if not self._playlist_written and self.files.playlist.exists():
            self._playlist_written = True  # the muxer writes it when the first segment is complete
            self.outputs.on_playlist()

    def _maybe_thumbnail_h264(self, data: bytes, now_s: float) -> None:
        if now_s < self._next_thumbnail_s:
            return
        frames = av.CodecContext.create("h264", "r").decode(av.Packet(data))
        if frames:
            self._maybe_thumbnail(frames[0], now_s)

    def _maybe_thumbnail(self, frame: Any, now_s: float) -> None:
        if now_s < self._next_thumbnail_s:
            return
        self._next_thumbnail_s = now_s + self.thumbnail_interval_s
        jpeg = av.CodecContext.create("mjpeg", "w")
        jpeg.width, jpeg.height = frame.width, frame.height
        jpeg.pix_fmt = "yuvj420p"
        jpeg.time_base = fractions.Fraction(1, 30)
        image = frame.reformat(format="yuvj420p")
        image.pts = 0
        data = b"".join(bytes(p) for p in [*jpeg.encode(image), *jpeg.encode(None)])
        temporary = self.files.thumbnail.with_suffix(".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, self.files.thumbnail)
        self.outputs.thumbnails += 1

    def _close(self) -> None:
        for name, encoder in (("video", self._x264), ("audio", self._aac)):
            if encoder is not None and self._containers:
                try:
                    for packet in encoder.encode(None):
                        self._mux(name, bytes(packet), packet.pts, packet.time_base, packet.is_keyframe, packet.dts)
                except (av.FFmpegError, ValueError):
                    pass
        for container in self._containers:
            try:
                container.close()
            except (av.FFmpegError, ValueError) as exc:
                log.warning("closing %s: %s", container.name, exc)
