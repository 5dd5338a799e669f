"""A challenge's template: the skeleton of an edit decision list that joining a challenge pre-fills the editor with
(how many clips and how long, their speed, the music's start and volume, texts, the caption and hashtags). The
joiner's own clips and the challenge's sound fill in the rest."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from editor.decisions import (
    CAPTION_CHARS_MAX,
    COLOUR,
    HASHTAGS_MAX,
    TEXT_CHARS_MAX,
    TEXT_SIZE_PX_MAX,
    TEXT_SIZE_PX_MIN,
    Model,
    Ms,
    Speed,
    Volume,
    X,
    Y,
)
from livecore.http import NO_NUL

TEMPLATE_CLIPS_MAX = 20
TEMPLATE_TEXTS_MAX = 20


class ClipSlot(Model):
    duration_ms: Ms | None = Field(default=None, description="how long the joiner's clip should last")
    speed: Speed = 1.0


class TemplateMusic(Model):
    start_ms: Ms = Field(default=0, description="where in the challenge's sound the music starts")
    volume: Volume = 0.5


class TemplateText(Model):
    """A text every joiner's video carries, drawn as the edit's texts are, over the whole video."""

    text: str = Field(min_length=1, max_length=TEXT_CHARS_MAX, pattern=NO_NUL)
    x: X
    y: Y
    size_px: int = Field(default=48, ge=TEXT_SIZE_PX_MIN, le=TEXT_SIZE_PX_MAX)
    colour: str = Field(default="#ffffff", pattern=COLOUR, description="a colour as #rrggbb")


class ChallengeTemplate(Model):
    clips: list[ClipSlot] = Field(default_factory=list, max_length=TEMPLATE_CLIPS_MAX)
    music: TemplateMusic | None = None
    texts: list[TemplateText] = Field(default_factory=list, max_length=TEMPLATE_TEXTS_MAX)
    caption: str = Field(default="", max_length=CAPTION_CHARS_MAX, pattern=NO_NUL)
    hashtags: list[Annotated[str, Field(pattern=r"^#?\w{1,50}$")]] = Field(default_factory=list,
                                                                          max_length=HASHTAGS_MAX)
