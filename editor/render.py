"""Rendering one edit with PyAV: the pieces decoded, retimed, scaled to 720x1280 (or to half of it beside a duet
partner), cross-faded, texts and stickers blended where they are, encoded to H.264/AAC in an MP4 with its index
(moov) at the front.

Blocking and CPU-bound: it runs in a render process (editor/renderer.py), one per core at most.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from editor import audiomix
from editor.canvas import CANVAS_HEIGHT_PX, CANVAS_WIDTH_PX, FPS
from editor.overlays import Overlay, StickerSpec, TextSpec, overlays_of

ENCODE_PRESET = "veryfast"  # as feeds/transcoding.py: the same quality for uploads and edits
ENCODE_CRF = "23"
AUDIO_BIT_RATE = 128_000
AAC_FRAME_SAMPLES = 1024
PROGRESS_EVERY_FRAMES = 10
AUDIO_SHARE = 0.05  # of the progress bar: mixing the sound comes first
BLACK_LUMA, GREY_CHROMA = 16, 128
FRAME_TIME_SLACK_MS = 0.5
DECODE_AHEAD_FRAMES = 8  # about 11 MB of 720x1280 frames per source being read
QUEUE_WAIT_S = 0.1  # a frame stamped 33.3333 ms is the frame for 33.333 ms
_TIME_BASE = Fraction(1, FPS)

Progress = Callable[[float], None]


@dataclass(frozen=True)
class PieceSpec:
    path: str
    in_ms: int
    speed: float
    volume: float
    start_ms: int
    length_ms: int
    fade_in_ms: int = 0
    fade_out_ms: int = 0

    def source_ms(self, t_ms: float) -> float:
        """The source's time shown at the edit's time `t_ms`."""
        return self.in_ms + (t_ms - self.start_ms) * self.speed

    def plays_at(self, t_ms: float) -> bool:
        return self.start_ms <= t_ms < self.start_ms + self.length_ms


@dataclass(frozen=True)
class PartnerSpec:
    """A duet partner: another video played beside the edit from `in_ms`, or music under it (no picture)."""

    path: str
    in_ms: int
    volume: float


@dataclass(frozen=True)
class RenderPlan:
    pieces: list[PieceSpec]
    length_ms: int
    output: str
    duet: PartnerSpec | None = None
    music: PartnerSpec | None = None
    texts: list[TextSpec] = field(default_factory=list)
    stickers: list[StickerSpec] = field(default_factory=list)
    preset: str = ENCODE_PRESET
    crf: str = ENCODE_CRF

    @property
    def frames(self) -> int:
        return round(self.length_ms * FPS / 1000)


@dataclass(frozen=True)
class Rendered:
    frames: int
    length_ms: int


class DecodeAhead:
    """Frames decoded in a thread of their own, up to `ahead` of where the reader is, so decoding overlaps encoding
    (PyAV lets go of the GIL inside FFmpeg)."""

    def __init__(self, frames: Iterator[av.VideoFrame], ahead: int) -> None:
        self.queue: queue.Queue[av.VideoFrame | BaseException | None] = queue.Queue(maxsize=ahead)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._decode, args=(frames,), name="decode-ahead", daemon=True)
        self.thread.start()

    def _decode(self, frames: Iterator[av.VideoFrame]) -> None:
        try:
            for frame in frames:
                if not self._put(frame):
                    return
        except BaseException as exc:  # handed to the reader, which raises it
            self._put(exc)
            return
        self._put(None)

    def _put(self, item: av.VideoFrame | BaseException | None) -> bool:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=QUEUE_WAIT_S)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> av.VideoFrame | None:
        """The next frame, None after the last."""
        item = self.queue.get()
        if isinstance(item, BaseException):
            raise item
        if item is None:
            self.queue.put(None)  # every later call sees the end too
        return item

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()


class VideoReader:
    """A source's frames in time order, each scaled to fit (width, height) once however often it is shown."""

    def __init__(self, path: str, in_ms: int, width: int, height: int) -> None:
        self.container = av.open(path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        if in_ms and self.stream.time_base:
            self.container.seek(int(in_ms / 1000 / self.stream.time_base), stream=self.stream, backward=True)
        self.width, self.height = width, height
        self.decoded = DecodeAhead(self.container.decode(self.stream), DECODE_AHEAD_FRAMES)
        self.current: av.VideoFrame | None = None
        self.pending: av.VideoFrame | None = None
        self.scaled: av.VideoFrame | None = None

    def frame_at(self, source_ms: float) -> av.VideoFrame:
        """The last frame at or before `source_ms` (the first one if none is), scaled."""
        while True:
            if self.pending is None:
                self.pending = self.decoded.next()
                if self.pending is None:
                    break
            if self.current is not None and _time_ms(self.pending) > source_ms + FRAME_TIME_SLACK_MS:
                break
            self.current, self.pending, self.scaled = self.pending, None, None
        if self.current is None:
            raise ValueError("the source has no video frames")
        if self.scaled is None:
            self.scaled = _fitted(self.current, self.width, self.height)
        return self.scaled

    def close(self) -> None:
        self.decoded.close()
        self.container.close()


def _time_ms(frame: av.VideoFrame) -> float:
    return float(frame.pts * frame.time_base) * 1000 if frame.pts is not None and frame.time_base else 0.0


def _fitted(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """The frame in yuv420p, scaled to fit (width, height) with its aspect kept, black bars where it does not fill."""
    scale = min(width / frame.width, height / frame.height)
    w, h = max(2, int(frame.width * scale) // 2 * 2), max(2, int(frame.height * scale) // 2 * 2)
    if (w, h) == (width, height):
        fitted = frame.reformat(width=width, height=height, format="yuv420p")
    else:
        inner = frame.reformat(width=w, height=h, format="yuv420p").to_ndarray()
        canvas = _black(width, height)
        x, y = (width - w) // 4 * 2, (height - h) // 4 * 2
        _paste(canvas, width, height, inner, w, h, x, y)
        fitted = av.VideoFrame.from_ndarray(canvas, format="yuv420p")
    fitted.pict_type = av.video.frame.PictureType.NONE  # a source's keyframe is no reason for one in the edit
    return fitted


def _black(width: int, height: int) -> np.ndarray:
    canvas = np.full((height * 3 // 2, width), GREY_CHROMA, dtype=np.uint8)
    canvas[:height] = BLACK_LUMA
    return canvas


def planes(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of a yuv420p array as PyAV lays it out ((height * 3/2, width))."""
    quarter = height // 4
    return (frame[:height], frame[height:height + quarter].reshape(height // 2, width // 2),
            frame[height + quarter:].reshape(height // 2, width // 2))


def _paste(canvas: np.ndarray, cw: int, ch: int, picture: np.ndarray, pw: int, ph: int, x: int, y: int) -> None:
    for into, plane, div in zip(planes(canvas, cw, ch), planes(picture, pw, ph), (1, 2, 2), strict=True):
        into[y // div:y // div + ph // div, x // div:x // div + pw // div] = plane


class Timeline:
    """The pieces' readers, opened when their piece begins and closed once it has ended."""

    def __init__(self, pieces: list[PieceSpec], width: int, height: int) -> None:
        self.pieces = pieces
        self.width, self.height = width, height
        self.readers: dict[int, VideoReader] = {}

    def picture_at(self, t_ms: float) -> av.VideoFrame | np.ndarray:
        """The edit's picture at `t_ms`: one piece's frame, or two blended during a crossfade."""
        playing = [i for i, p in enumerate(self.pieces) if p.plays_at(t_ms)] or [len(self.pieces) - 1]
        for index in [i for i in self.readers if i < playing[0]]:
            self.readers.pop(index).close()
        frames = [self._reader(i).frame_at(self.pieces[i].source_ms(t_ms)) for i in playing[-2:]]
        if len(frames) == 1:
            return frames[0]
        incoming = self.pieces[playing[-1]]
        weight = int(256 * (t_ms - incoming.start_ms) / max(1, incoming.fade_in_ms))
        old, new = (f.to_ndarray().astype(np.uint16) for f in frames)
        return ((old * (256 - weight) + new * weight) >> 8).astype(np.uint8)

    def _reader(self, index: int) -> VideoReader:
        if index not in self.readers:
            piece = self.pieces[index]
            self.readers[index] = VideoReader(piece.path, piece.in_ms, self.width, self.height)
        return self.readers[index]

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()
        self.readers.clear()


def render(plan: RenderPlan, progress: Progress) -> Rendered:
    """Render the plan to `plan.output`; `progress` hears the fraction done now and then."""
    track = audiomix.mixed_track(_audio_spans(plan), plan.length_ms)
    progress(AUDIO_SHARE)
    overlays = overlays_of(plan.texts, plan.stickers, CANVAS_WIDTH_PX, CANVAS_HEIGHT_PX)
    main_width = CANVAS_WIDTH_PX // 2 if plan.duet else CANVAS_WIDTH_PX
    timeline = Timeline(plan.pieces, main_width, CANVAS_HEIGHT_PX)
    partner = (VideoReader(plan.duet.path, plan.duet.in_ms, CANVAS_WIDTH_PX - main_width, CANVAS_HEIGHT_PX)
               if plan.duet else None)
    try:
        with av.open(plan.output, "w", format="mp4", options={"movflags": "faststart"}) as out:
            video = out.add_stream("libx264", rate=FPS)
            video.width, video.height, video.pix_fmt = CANVAS_WIDTH_PX, CANVAS_HEIGHT_PX, "yuv420p"
            video.options = {"preset": plan.preset, "crf": plan.crf}
            # PyAV asks for slice threads, which x264 runs at a fraction of the throughput of its frame threads
            # (what the FFmpeg command line uses).
            video.codec_context.thread_type = "FRAME"
            audio = out.add_stream("aac", rate=audiomix.RATE_HZ, layout="stereo")
            audio.bit_rate = AUDIO_BIT_RATE
            sent = 0
            for k in range(plan.frames):
                t_ms = k * 1000 / FPS
                picture = timeline.picture_at(t_ms)
                if partner is not None:
                    picture = _side_by_side(picture, partner.frame_at(plan.duet.in_ms + t_ms), main_width)
                frame = _with_overlays(picture, [o for o in overlays if o.shows_at(t_ms)])
                frame.pts, frame.time_base = k, _TIME_BASE
                out.mux(video.encode(frame))
                upto = audiomix.samples((k + 1) * 1000 / FPS) // AAC_FRAME_SAMPLES * AAC_FRAME_SAMPLES
                for chunk in audiomix.audio_frames(track, sent, max(sent, upto), AAC_FRAME_SAMPLES):
                    out.mux(audio.encode(chunk))
                sent = max(sent, upto)
                if k % PROGRESS_EVERY_FRAMES == 0:
                    progress(AUDIO_SHARE + (1 - AUDIO_SHARE) * k / plan.frames)
            for chunk in audiomix.audio_frames(track, sent, track.shape[1], AAC_FRAME_SAMPLES):
                out.mux(audio.encode(chunk))
            out.mux(video.encode(None))
            out.mux(audio.encode(None))
    finally:
        timeline.close()
        if partner is not None:
            partner.close()
    progress(1.0)
    return Rendered(plan.frames, plan.length_ms)


def _side_by_side(main: av.VideoFrame | np.ndarray, other: av.VideoFrame, main_width: int) -> np.ndarray:
    canvas = _black(CANVAS_WIDTH_PX, CANVAS_HEIGHT_PX)
    left = main if isinstance(main, np.ndarray) else main.to_ndarray()
    _paste(canvas, CANVAS_WIDTH_PX, CANVAS_HEIGHT_PX, left, main_width, CANVAS_HEIGHT_PX, 0, 0)
    _paste(canvas, CANVAS_WIDTH_PX, CANVAS_HEIGHT_PX, other.to_ndarray(), CANVAS_WIDTH_PX - main_width,
           CANVAS_HEIGHT_PX, main_width, 0)
    return canvas


def _with_overlays(picture: av.VideoFrame | np.ndarray, showing: list[Overlay]) -> av.VideoFrame:
    """The frame to encode; a frame nothing is drawn on goes to the encoder as decoded and scaled."""
    if isinstance(picture, np.ndarray):
        y, u, v = planes(picture, CANVAS_WIDTH_PX, CANVAS_HEIGHT_PX)
        for o in showing:
            o.blend_into(y, u, v)
        return av.VideoFrame.from_ndarray(picture, format="yuv420p")
    if not showing:
        return picture
    # Drawn on a copy: the decoded frame may be shown again (slow motion) or still be a decoder's reference.
    drawn = av.VideoFrame(CANVAS_WIDTH_PX, CANVAS_HEIGHT_PX, "yuv420p")
    target = [_plane_view(plane) for plane in drawn.planes]
    for into, source in zip(target, (_plane_view(plane) for plane in picture.planes), strict=True):
        into[...] = source
    for o in showing:
        o.blend_into(*target)
    return drawn


def _plane_view(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """A writable 2-D view of a frame's plane, without the padding at the end of each line."""
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, :plane.width]


def _audio_spans(plan: RenderPlan) -> list[audiomix.AudioSpan]:
    spans = [audiomix.AudioSpan(p.path, p.in_ms, p.speed, p.volume, p.start_ms, p.length_ms, p.fade_in_ms,
                                p.fade_out_ms) for p in plan.pieces]
    for partner in (plan.duet, plan.music):
        if partner is not None:
            spans.append(audiomix.AudioSpan(partner.path, partner.in_ms, 1.0, partner.volume, 0, plan.length_ms))
    return spans
