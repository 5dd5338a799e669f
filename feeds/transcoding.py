"""Checking an MP4 and making it playable everywhere: H.264 + AAC, a bounded size, a JPEG thumbnail.

Blocking (PyAV decodes and encodes): call it from a worker thread, never from the event loop.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image

MP4_FORMATS = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2"}  # FFmpeg's "mov,mp4,m4a,3gp,3g2,mj2" demuxer
PLAYABLE_VIDEO = "h264"
PLAYABLE_AUDIO = "aac"
THUMBNAIL_EDGE_PX = 480
THUMBNAIL_QUALITY = 82
ENCODE_PRESET = "veryfast"
ENCODE_CRF = "23"
AUDIO_RATE_HZ = 44100
AUDIO_BIT_RATE = 128_000


class VideoRejected(ValueError):
    """The file is not a video this node takes; the message says why (it becomes the video's `failure`)."""


@dataclass(frozen=True)
class VideoLimits:
    duration_ms_max: int
    edge_px_max: int


@dataclass(frozen=True)
class PreparedVideo:
    duration_ms: int
    width: int
    height: int
    transcoded: bool


def prepare_video(source: Path, video_path: Path, thumbnail_path: Path, limits: VideoLimits) -> PreparedVideo:
    """Check `source` (an MP4 with a video track, not too long), write it to `video_path` as H.264/AAC (copied as
    it is when it already is, transcoded once otherwise) and a JPEG of its first frame to `thumbnail_path`."""
    try:
        with av.open(str(source)) as container:
            video, audio, duration_ms = _inspect(container, limits)
            needs_transcode = (video.codec_context.name != PLAYABLE_VIDEO
                               or (audio is not None and audio.codec_context.name != PLAYABLE_AUDIO)
                               or max(video.width, video.height) > limits.edge_px_max)
            width, height = video.width, video.height
    except av.error.FFmpegError as exc:
        raise VideoRejected(f"the file could not be read as a video: {exc}") from exc
    video_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = video_path.with_suffix(".tmp")
    try:
        if needs_transcode:
            width, height = _transcode(source, temporary, limits.edge_px_max)
        else:
            shutil.copyfile(source, temporary)
        _write_thumbnail(temporary, thumbnail_path)
    except av.error.FFmpegError as exc:
        temporary.unlink(missing_ok=True)
        raise VideoRejected(f"the video could not be decoded: {exc}") from exc
    temporary.replace(video_path)
    return PreparedVideo(duration_ms, width, height, needs_transcode)


def _inspect(container: Any, limits: VideoLimits) -> tuple[Any, Any, int]:
    names = set(container.format.name.split(","))
    if not names & MP4_FORMATS:
        raise VideoRejected(f"send an MP4 (this is {container.format.long_name})")
    if not container.streams.video:
        raise VideoRejected("the file has no video track")
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    duration_ms = _duration_ms(container, video)
    if duration_ms <= 0:
        raise VideoRejected("the video has no duration")
    if duration_ms > limits.duration_ms_max:
        raise VideoRejected(f"the video lasts {duration_ms / 1000:.1f} s; at most "
                            f"{limits.duration_ms_max / 1000:g} s (video_duration_ms_max)")
    return video, audio, duration_ms


def _duration_ms(container: Any, video: Any) -> int:
    if container.duration:
        return int(container.duration / 1000)  # AV_TIME_BASE: microseconds
    if video.duration and video.time_base:
        return int(video.duration * video.time_base * 1000)
    return 0


def _scaled(width: int, height: int, edge_px_max: int) -> tuple[int, int]:
    """The size after fitting the longer side into `edge_px_max`, both sides even (H.264's 4:2:0 needs it)."""
    scale = min(1.0, edge_px_max / max(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _transcode(source: Path, target: Path, edge_px_max: int) -> tuple[int, int]:
    with av.open(str(source)) as inp, av.open(str(target), "w", format="mp4",
                                              options={"movflags": "+faststart"}) as out:
        in_video = inp.streams.video[0]
        in_audio = inp.streams.audio[0] if inp.streams.audio else None
        width, height = _scaled(in_video.width, in_video.height, edge_px_max)
        rate = in_video.average_rate or Fraction(30, 1)
        out_video = out.add_stream("libx264", rate=rate)
        out_video.width, out_video.height, out_video.pix_fmt = width, height, "yuv420p"
        out_video.options = {"preset": ENCODE_PRESET, "crf": ENCODE_CRF}
        out_audio = resampler = None
        if in_audio is not None:
            out_audio = out.add_stream("aac", rate=AUDIO_RATE_HZ)
            out_audio.bit_rate = AUDIO_BIT_RATE
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE_HZ)
        streams = [s for s in (in_video, in_audio) if s is not None]
        for frame in inp.decode(*streams):
            if isinstance(frame, av.VideoFrame):
                scaled = frame.reformat(width=width, height=height, format="yuv420p")
                scaled.pts, scaled.time_base = frame.pts, frame.time_base
                out.mux(out_video.encode(scaled))
            elif out_audio is not None and resampler is not None:
                for chunk in resampler.resample(frame):
                    out.mux(out_audio.encode(chunk))
        out.mux(out_video.encode(None))
        if out_audio is not None:
            out.mux(out_audio.encode(None))
    return width, height


def _write_thumbnail(video_path: Path, thumbnail_path: Path) -> None:
    with av.open(str(video_path)) as container:
        frame = next(container.decode(video=0))
        image: Image.Image = frame.to_image()
    image.thumbnail((THUMBNAIL_EDGE_PX, THUMBNAIL_EDGE_PX))
    temporary = thumbnail_path.with_suffix(".tmp")
    image.convert("RGB").save(temporary, "JPEG", quality=THUMBNAIL_QUALITY)
    temporary.replace(thumbnail_path)
