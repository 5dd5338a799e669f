"""Edit decision lists: the JSON a client sends to have a video rendered, validated, and the timeline it makes.

Pure: no I/O. The models name the bad field when a list does not fit (pydantic's `loc`, e.g. `clips.1.out_ms`);
`check_limits` applies the node's settings the same way; `timeline` places every clip on the output's time axis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from editor.canvas import CANVAS_HEIGHT_PX, CANVAS_WIDTH_PX
from livecore.http import NO_NUL, Id, Problem

SPEED_MIN = 0.5
SPEED_MAX = 2.0
VOLUME_MAX = 2.0
MEDIA_MS_MAX = 24 * 3600 * 1000
TEXT_CHARS_MAX = 200
TEXT_SIZE_PX_MIN = 8
TEXT_SIZE_PX_MAX = 300
CAPTION_CHARS_MAX = 2200
HASHTAGS_MAX = 30
COLOUR = r"^#[0-9a-fA-F]{6}$"

Ms = Annotated[int, Field(ge=0, le=MEDIA_MS_MAX, description="milliseconds")]
Speed = Annotated[float, Field(ge=SPEED_MIN, le=SPEED_MAX, description="playback speed, 0.5 to 2 (pitch kept)")]
Volume = Annotated[float, Field(ge=0, le=VOLUME_MAX, description="gain, 0 (mute) to 2")]
X = Annotated[int, Field(ge=0, lt=CANVAS_WIDTH_PX, description="pixels from the frame's left edge")]
Y = Annotated[int, Field(ge=0, lt=CANVAS_HEIGHT_PX, description="pixels from the frame's top edge")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EditTransition(Model):
    kind: Literal["cut", "crossfade"] = Field(description="how this clip follows the one before it")
    duration_ms: Ms = Field(default=0, description="the crossfade's length (0 for a cut)")

    @model_validator(mode="after")
    def _length_fits_kind(self) -> EditTransition:
        if self.kind == "cut" and self.duration_ms:
            raise ValueError("a cut has no duration_ms")
        if self.kind == "crossfade" and not self.duration_ms:
            raise ValueError("a crossfade needs duration_ms > 0")
        return self


class Span(Model):
    in_ms: Ms = Field(default=0, description="where in the source the clip starts")
    out_ms: Ms = Field(description="where in the source it ends (after in_ms)")

    @field_validator("out_ms")
    @classmethod
    def _after_in(cls, out_ms: int, info: ValidationInfo) -> int:
        in_ms = info.data.get("in_ms")
        if in_ms is not None and out_ms <= in_ms:
            raise ValueError(f"must be after in_ms ({in_ms})")
        return out_ms


class EditClip(Span):
    clip_id: Id | None = Field(default=None, description="an uploaded clip (POST /api/edits/clips)")
    video_id: Id | None = Field(default=None, description="one of your own videos in the feeds")
    speed: Speed = 1.0
    volume: Volume = 1.0
    transition: EditTransition | None = Field(default=None, description="how it follows the clip before (a cut "
                                                                    "unless said)")

    @model_validator(mode="after")
    def _one_source(self) -> EditClip:
        if (self.clip_id is None) == (self.video_id is None):
            raise ValueError("name exactly one source: clip_id or video_id")
        return self

    @property
    def length_ms(self) -> int:
        """How long the clip lasts in the output (its span over its speed)."""
        return round((self.out_ms - self.in_ms) / self.speed)


class EditStitch(Span):
    video_id: Id = Field(description="another creator's video whose span opens the edit (credited)")
    volume: Volume = 1.0


class EditDuet(Model):
    video_id: Id = Field(description="another creator's video played beside the edit, from in_ms")
    in_ms: Ms = 0
    volume: Volume = 1.0


class EditMusic(Model):
    sound_id: Id = Field(description="a sound of the library (GET /api/sounds), mixed under the clips' audio")
    start_ms: Ms = Field(default=0, description="where in the sound the music starts")
    volume: Volume = 0.5


class Placed(Model):
    x: X
    y: Y
    start_ms: Ms = Field(default=0, description="when it appears on the output's timeline")
    end_ms: Ms | None = Field(default=None, description="when it goes (the end of the edit if left out)")

    @field_validator("end_ms")
    @classmethod
    def _after_start(cls, end_ms: int | None, info: ValidationInfo) -> int | None:
        start_ms = info.data.get("start_ms")
        if end_ms is not None and start_ms is not None and end_ms <= start_ms:
            raise ValueError(f"must be after start_ms ({start_ms})")
        return end_ms


class EditText(Placed):
    text: str = Field(min_length=1, max_length=TEXT_CHARS_MAX, pattern=NO_NUL)
    size_px: int = Field(default=48, ge=TEXT_SIZE_PX_MIN, le=TEXT_SIZE_PX_MAX)
    colour: str = Field(default="#ffffff", pattern=COLOUR, description="a colour as #rrggbb")


class EditSticker(Placed):
    sticker_id: Id = Field(description="a PNG uploaded with POST /api/edits/stickers")
    width_px: int | None = Field(default=None, ge=8, le=CANVAS_WIDTH_PX,
                                 description="drawn this wide (height in proportion); its own width if left out")


class EditDecisions(Model):
    """An edit: clips in order (each trimmed, sped up or down, with its volume and transition), an optional stitch
    before them, duet partner beside them and music under them, texts and stickers over them."""

    clips: list[EditClip] = Field(min_length=1)
    stitch: EditStitch | None = None
    duet: EditDuet | None = None
    music: EditMusic | None = None
    texts: list[EditText] = Field(default_factory=list)
    stickers: list[EditSticker] = Field(default_factory=list)
    caption: str = Field(default="", max_length=CAPTION_CHARS_MAX, pattern=NO_NUL)
    hashtags: list[Annotated[str, Field(pattern=r"^#?\w{1,50}$")]] = Field(default_factory=list,
                                                                          max_length=HASHTAGS_MAX)
    challenge_id: Id | None = None
    mature: bool = False

    @field_validator("clips")
    @classmethod
    def _first_clip_has_no_transition(cls, clips: list[EditClip]) -> list[EditClip]:
        if clips and clips[0].transition is not None and clips[0].transition.kind != "cut":
            raise ValueError("the first clip has nothing to cross-fade from (clips.0.transition)")
        return clips


@dataclass(frozen=True)
class EditLimits:
    clips_max: int
    overlays_max: int
    duration_ms_max: int
    stitch_ms_max: int
    crossfade_ms_max: int


@dataclass(frozen=True)
class Placement:
    """Where one piece lands on the output: it starts at `start_ms` and lasts `length_ms`, the first `fade_in_ms`
    of which cross-fade from the piece before."""

    start_ms: int
    length_ms: int
    fade_in_ms: int


def pieces(edit: EditDecisions) -> list[EditClip | EditStitch]:
    """What plays one after the other: the stitch (if any), then the clips."""
    return [*([edit.stitch] if edit.stitch else []), *edit.clips]


def timeline(edit: EditDecisions) -> tuple[list[Placement], int]:
    """Each piece's placement and the edit's length in ms."""
    placements: list[Placement] = []
    end_ms = 0
    for piece in pieces(edit):
        length = piece.length_ms if isinstance(piece, EditClip) else piece.out_ms - piece.in_ms
        fade = piece.transition.duration_ms if isinstance(piece, EditClip) and piece.transition else 0
        start = end_ms - fade
        placements.append(Placement(start, length, fade))
        end_ms = start + length
    return placements, end_ms


def check_limits(edit: EditDecisions, limits: EditLimits) -> int:
    """Refuse (400, naming the field and the setting) what the node's settings do not allow; the edit's length."""
    if len(edit.clips) > limits.clips_max:
        _refuse("clips", f"at most {limits.clips_max} clips (edit_clips_max)")
    if len(edit.texts) + len(edit.stickers) > limits.overlays_max:
        _refuse("texts", f"at most {limits.overlays_max} texts and stickers together (edit_overlays_max)")
    if edit.stitch and edit.stitch.out_ms - edit.stitch.in_ms > limits.stitch_ms_max:
        _refuse("stitch.out_ms", f"a stitch takes at most {limits.stitch_ms_max} ms of the other video "
                "(edit_stitch_ms_max)")
    placements, length_ms = timeline(edit)
    offset = 1 if edit.stitch else 0
    for index, placed in enumerate(placements):
        if not placed.fade_in_ms:
            continue
        where = f"clips.{index - offset}.transition.duration_ms"
        if placed.fade_in_ms > limits.crossfade_ms_max:
            _refuse(where, f"a crossfade lasts at most {limits.crossfade_ms_max} ms (edit_crossfade_ms_max)")
        before = placements[index - 1]
        if index == 0 or placed.fade_in_ms * 2 > min(before.length_ms, placed.length_ms):
            _refuse(where, "a crossfade may take at most half of each clip it joins")
    if length_ms > limits.duration_ms_max:
        _refuse("clips", f"the edit lasts {length_ms} ms; at most {limits.duration_ms_max} ms "
                "(edit_duration_ms_max)")
    for kind, overlays in (("texts", edit.texts), ("stickers", edit.stickers)):
        for index, overlay in enumerate(overlays):
            if overlay.start_ms >= length_ms:
                _refuse(f"{kind}.{index}.start_ms", f"the edit ends at {length_ms} ms")
    return length_ms


def hashtag_words(edit: EditDecisions) -> list[str]:
    """The edit's hashtags without '#', lower case, each once."""
    found: list[str] = []
    for tag in edit.hashtags:
        word = re.sub(r"^#", "", tag).lower()
        if word not in found:
            found.append(word)
    return found


def _refuse(field: str, detail: str) -> None:
    raise Problem(400, "invalid-field", f"{field}: {detail}", field=field)
