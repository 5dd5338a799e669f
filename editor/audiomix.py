"""The edit's sound, mixed in memory at 48 kHz stereo: each piece's span (sped up or down with `atempo`, which keeps
the pitch), its volume and crossfades, the duet partner beside it and the music under it.

The whole track is one float32 array (about 23 MB a minute); the edit's length is bounded by edit_duration_ms_max.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

RATE_HZ = 48_000
CHANNELS = 2
_TIME_BASE = Fraction(1, RATE_HZ)


@dataclass(frozen=True)
class AudioSpan:
    """`length_ms` of output from `path` starting at `in_ms` of the source, played at `speed`, placed at `start_ms`
    of the edit; its first `fade_in_ms` cross-fade with what ends there."""

    path: str
    in_ms: int
    speed: float
    volume: float
    start_ms: int
    length_ms: int
    fade_in_ms: int = 0
    fade_out_ms: int = 0


def samples(ms: float) -> int:
    return round(ms * RATE_HZ / 1000)


def mixed_track(spans: list[AudioSpan], length_ms: int) -> np.ndarray:
    """The edit's sound: every span at its place and volume, summed and kept within [-1, 1]."""
    track = np.zeros((CHANNELS, samples(length_ms)), dtype=np.float32)
    for span in spans:
        if span.volume == 0:
            continue
        sound = span_samples(span)
        _fade(sound, samples(span.fade_in_ms), samples(span.fade_out_ms))
        start = samples(span.start_ms)
        end = min(track.shape[1], start + sound.shape[1])
        track[:, start:end] += sound[:, :end - start] * span.volume
    np.clip(track, -1.0, 1.0, out=track)
    return track


def span_samples(span: AudioSpan) -> np.ndarray:
    """Exactly `length_ms` of the span's sound (silence where the source has none or ends early)."""
    wanted = samples(span.length_ms)
    source_ms = span.length_ms * span.speed
    raw = _decoded(span.path, span.in_ms, source_ms)
    if span.speed != 1.0 and raw.shape[1]:
        raw = _tempo_changed(raw, span.speed)
    out = np.zeros((CHANNELS, wanted), dtype=np.float32)
    take = min(wanted, raw.shape[1])
    out[:, :take] = raw[:, :take]
    return out


def _decoded(path: str, in_ms: int, source_ms: float) -> np.ndarray:
    """The source's sound from `in_ms` for `source_ms`, as 48 kHz stereo float32."""
    first = samples(in_ms)
    wanted = samples(source_ms)
    chunks: list[np.ndarray] = []
    got = 0
    with av.open(path) as container:
        if not container.streams.audio:
            return np.zeros((CHANNELS, 0), dtype=np.float32)
        stream = container.streams.audio[0]
        if in_ms and stream.time_base:
            container.seek(int(in_ms / 1000 / stream.time_base), stream=stream, backward=True)
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=RATE_HZ)
        position: int | None = None  # the output sample the next resampled chunk starts at
        for frame in container.decode(stream):
            if position is None:
                position = samples(float(frame.pts * frame.time_base) * 1000) if frame.pts is not None else first
            for chunk in resampler.resample(frame):
                data = chunk.to_ndarray()
                begin, end = position, position + data.shape[1]
                position = end
                lo, hi = max(begin, first), min(end, first + wanted)
                if hi > lo:
                    chunks.append(data[:, lo - begin:hi - begin])
                    got += hi - lo
            if position is not None and position >= first + wanted:
                break
    return np.concatenate(chunks, axis=1) if chunks else np.zeros((CHANNELS, 0), dtype=np.float32)


def _tempo_changed(sound: np.ndarray, speed: float) -> np.ndarray:
    """The sound played `speed` times as fast at the same pitch (FFmpeg's atempo through PyAV's filter graph)."""
    graph = av.filter.Graph()
    source = graph.add_abuffer(format="fltp", sample_rate=RATE_HZ, layout="stereo", time_base=_TIME_BASE)
    tempo = graph.add("atempo", f"{speed:.6f}")
    planar = graph.add("aformat", f"sample_fmts=fltp:sample_rates={RATE_HZ}:channel_layouts=stereo")
    sink = graph.add("abuffersink")
    source.link_to(tempo)
    tempo.link_to(planar)  # atempo works on packed samples: back to planar stereo for the mix
    planar.link_to(sink)
    graph.configure()
    out: list[np.ndarray] = []
    step = 4096
    for start in range(0, sound.shape[1], step):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(sound[:, start:start + step]), format="fltp",
                                           layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = RATE_HZ, start, _TIME_BASE
        graph.push(frame)
        out += _pulled(graph)
    graph.push(None)
    out += _pulled(graph)
    return np.concatenate(out, axis=1) if out else np.zeros((CHANNELS, 0), dtype=np.float32)


def _pulled(graph: av.filter.Graph) -> list[np.ndarray]:
    pulled: list[np.ndarray] = []
    while True:
        try:
            pulled.append(graph.pull().to_ndarray())
        except (av.BlockingIOError, av.EOFError):
            return pulled


def _fade(sound: np.ndarray, fade_in: int, fade_out: int) -> None:
    """Linear gain ramps at the start and end, in place (the two sides of a crossfade sum to one)."""
    n = sound.shape[1]
    if fade_in:
        k = min(fade_in, n)
        sound[:, :k] *= np.linspace(0.0, 1.0, fade_in, endpoint=False, dtype=np.float32)[:k]
    if fade_out:
        k = min(fade_out, n)
        sound[:, n - k:] *= np.linspace(1.0, 0.0, fade_out, endpoint=False, dtype=np.float32)[fade_out - k:]


def audio_frames(track: np.ndarray, start: int, end: int, frame_samples: int) -> list[av.AudioFrame]:
    """AudioFrames of `frame_samples` covering [start, end) of the track, for the encoder."""
    frames = []
    for at in range(start, end, frame_samples):
        data = np.ascontiguousarray(track[:, at:min(end, at + frame_samples)])
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = RATE_HZ, at, _TIME_BASE
        frames.append(frame)
    return frames
