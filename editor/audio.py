"""Checking an uploaded sound and storing it one way: AAC in an MP4 (.m4a) with its index at the front, so every
browser previews it, the renderer reads it with PyAV and its duration is what was decoded, not what a header says.

Blocking (PyAV decodes and encodes): call it from a worker thread, never from the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

AUDIO_RATE_HZ = 44100
AUDIO_BIT_RATE = 128_000
AUDIO_LAYOUT = "stereo"
# FFmpeg's demuxers of what a picture file is: a still image is not a sound even when it decodes.
IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "gif", "webp_pipe", "bmp_pipe", "tiff_pipe"}


class SoundRejected(ValueError):
    """The file is not a sound this node takes; the message says why, naming the setting when it is a limit."""


@dataclass(frozen=True)
class SoundLimits:
    duration_ms_min: int
    duration_ms_max: int


@dataclass(frozen=True)
class PreparedSound:
    duration_ms: int
    audio_bytes: int


def prepare_sound(source: Path, target: Path, limits: SoundLimits) -> PreparedSound:
    """Check `source` (audio only, within the duration limits) and write it to `target` as AAC in MP4."""
    temporary = target.with_name(target.name + ".tmp")
    try:
        with av.open(str(source)) as inp:
            audio = _audio_stream(inp, limits)
            samples = _transcode(inp, audio, temporary, limits)
    except av.error.FFmpegError as exc:
        temporary.unlink(missing_ok=True)
        raise SoundRejected(f"the file could not be read as audio: {exc}") from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    duration_ms = samples * 1000 // AUDIO_RATE_HZ
    if duration_ms < limits.duration_ms_min:
        temporary.unlink(missing_ok=True)
        raise SoundRejected(f"the sound lasts {duration_ms / 1000:.1f} s; at least "
                            f"{limits.duration_ms_min / 1000:g} s (sound_duration_ms_min)")
    temporary.replace(target)
    return PreparedSound(duration_ms, target.stat().st_size)


def _audio_stream(container: Any, limits: SoundLimits) -> Any:
    if set(container.format.name.split(",")) & IMAGE_FORMATS:
        raise SoundRejected(f"send an audio file (this is {container.format.long_name})")
    moving = [s for s in container.streams.video if not _is_cover_art(s)]
    if moving:
        raise SoundRejected("the file has a video track; send audio only (an MP3, M4A, WAV, OGG or FLAC)")
    if not container.streams.audio:
        raise SoundRejected("the file has no audio track")
    declared_ms = int(container.duration / 1000) if container.duration else 0  # AV_TIME_BASE: microseconds
    if declared_ms > limits.duration_ms_max:
        raise SoundRejected(_too_long(declared_ms, limits))
    return container.streams.audio[0]


def _is_cover_art(stream: Any) -> bool:
    """An MP3's or M4A's album picture: one still frame beside the audio, not a video."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _too_long(duration_ms: int, limits: SoundLimits) -> str:
    return (f"the sound lasts {duration_ms / 1000:.1f} s or more; at most {limits.duration_ms_max / 1000:g} s "
            "(sound_duration_ms_max)")


def _transcode(inp: Any, audio: Any, target: Path, limits: SoundLimits) -> int:
    """Decode `audio` into AAC at `target`; the samples written. Stops as soon as the sound is too long, whatever
    its header said."""
    samples_max = limits.duration_ms_max * AUDIO_RATE_HZ // 1000
    samples = 0
    with av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("aac", rate=AUDIO_RATE_HZ)
        stream.bit_rate = AUDIO_BIT_RATE
        stream.layout = AUDIO_LAYOUT
        resampler = av.AudioResampler(format="fltp", layout=AUDIO_LAYOUT, rate=AUDIO_RATE_HZ)
        for frame in inp.decode(audio):
            for chunk in resampler.resample(frame):
                samples += chunk.samples
                if samples > samples_max:
                    raise SoundRejected(_too_long(samples * 1000 // AUDIO_RATE_HZ, limits))
                out.mux(stream.encode(chunk))
        for chunk in resampler.resample(None):
            samples += chunk.samples
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))
    if samples == 0:
        raise SoundRejected("the audio track holds no sound (nothing decoded)")
    return samples


def write_tone(path: Path, notes_hz: tuple[float, ...], beat_ms: int, duration_ms: int) -> None:
    """A short melody (the notes in turn, one per beat, softly enveloped) as AAC in MP4: the platform's demo sounds,
    made at seed time rather than kept in the repository."""
    total = duration_ms * AUDIO_RATE_HZ // 1000
    t = np.arange(total) / AUDIO_RATE_HZ
    beat = beat_ms / 1000
    index = (t // beat).astype(int) % len(notes_hz)
    frequency = np.asarray(notes_hz)[index]
    within = (t % beat) / beat
    envelope = np.minimum(1.0, within * 20) * (1 - within) ** 2
    wave = (0.3 * envelope * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    temporary = path.with_name(path.name + ".tmp")
    with av.open(str(temporary), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("aac", rate=AUDIO_RATE_HZ)
        stream.bit_rate = AUDIO_BIT_RATE
        stream.layout = AUDIO_LAYOUT
        step = 1024
        for start in range(0, total, step):
            chunk = wave[start:start + step]
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout=AUDIO_LAYOUT)
            frame.sample_rate, frame.pts = AUDIO_RATE_HZ, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    temporary.replace(path)
