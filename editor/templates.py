"""A challenge's template: the skeleton of an edit decision list that joining a challenge pre-fills the editor with
(how many clips and how long, their speed, the music's start and volume, texts, the caption and hashtags). The
joiner's own clips and the challenge's sound fill in the rest."""

from __future__ import annotations

from pydantic import Field

from editor.decisions import CAPTION_CHARS_MAX, HASHTAGS_MAX, EditText, Model, Ms, Speed, Volume

TEMPLATE_CLIPS_MAX = 20
TEMPLATE_TEXTS_MAX = 20


class ClipSlot(Model):
    duration_ms: Ms | None = Field(default=None, description="how long the joiner's clip should last")
    speed: Speed = 1.0


class TemplateMusic(Model):
    start_ms: Ms = Field(default=0, description="where in the challenge's sound the music starts")
    volume: Volume = 0.5


class ChallengeTemplate(Model):
    clips: list[ClipSlot] = Field(default_factory=list, max_length=TEMPLATE_CLIPS_MAX)
    music: TemplateMusic | None = None
    texts: list[EditText] = Field(default_factory=list, max_length=TEMPLATE_TEXTS_MAX)
    caption: str = Field(default="", max_length=CAPTION_CHARS_MAX)
    hashtags: list[str] = Field(default_factory=list, max_length=HASHTAGS_MAX)
