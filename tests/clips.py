"""Small real MP4 files made with PyAV for the feeds tests: a colour per video, chosen codecs and length."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np

FPS = 10


def make_mp4(*, seconds: float = 1.0, video_codec: str = "libx264", audio_codec: str | None = "aac",
             width: int = 160, height: int = 120, colour: tuple[int, int, int] = (200, 40, 40),
             container_format: str = "mp4") -> bytes:
    """An MP4 (or `container_format`) of a flat colour with a moving bar and, unless `audio_codec` is None, a tone."""
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        video = container.add_stream(video_codec, rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = None
        if audio_codec is not None:
            audio = container.add_stream(audio_codec, rate=44100)
            audio.layout = "mono"
        frames = int(seconds * FPS)
        for index in range(frames):
            picture = np.full((height, width, 3), colour, dtype=np.uint8)
            picture[:, (index * 7) % width] = 255
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None:
            samples_per_frame = 1024
            total = int(seconds * 44100)
            for start in range(0, total, samples_per_frame):
                t = np.arange(start, start + samples_per_frame) / 44100
                tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 44100, start, Fraction(1, 44100)
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
    return out.getvalue()


def codecs_of(data: bytes) -> tuple[str, str | None]:
    with av.open(io.BytesIO(data)) as container:
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        return container.streams.video[0].codec_context.name, audio
