"""Test sources made at run time with PyAV: a moving test pattern with a sine tone, optionally a white flash and a
beep at the same instant (to measure audio/video drift after editing)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RATE_HZ = 48_000
TONE_HZ = 440
BEEP_HZ = 2000


def make_source(path: Path, *, seconds: float = 2.0, width: int = 180, height: int = 320, fps: int = 30,
                colour: tuple[int, int, int] = (40, 60, 160), tone_hz: float = TONE_HZ,
                flash_at_s: float | None = None, audio: bool = True) -> Path:
    """An MP4 (H.264/AAC) of a flat colour with bars that move every frame and a quiet tone; at `flash_at_s` one
    white frame and a 2 kHz beep of one frame's length."""
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast"}
        sound = container.add_stream("aac", rate=RATE_HZ, layout="mono") if audio else None
        frames = round(seconds * fps)
        flash_frame = round(flash_at_s * fps) if flash_at_s is not None else -1
        for index in range(frames):
            picture = np.full((height, width, 3), colour, dtype=np.uint8)
            picture[:, (index * 4) % width: (index * 4) % width + 4] = (250, 250, 60)
            if index == flash_frame:
                picture[:] = 255
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            total = round(seconds * RATE_HZ)
            t = np.arange(total) / RATE_HZ
            samples = 0.1 * np.sin(2 * np.pi * tone_hz * t)
            if flash_at_s is not None:
                beep = (t >= flash_at_s) & (t < flash_at_s + 1 / fps)
                samples = np.where(beep, 0.8 * np.sin(2 * np.pi * BEEP_HZ * t), samples)
            samples = samples.astype(np.float32)
            for start in range(0, total, 1024):
                chunk = samples[start:start + 1024].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = RATE_HZ, start, Fraction(1, RATE_HZ)
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return path
