"""The shapes the editor's sound and challenge routes answer with, as `GET /api/openapi.json` describes them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from livecore.http import Id


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Credited(Answer):
    id: Id
    username: str
    display_name: str


class SoundView(Answer):
    id: Id
    title: str
    artist: str = Field(description="who made it: credit them")
    licence: str
    uploader: Credited | None = Field(description="the creator who added it; null for the platform's")
    platform: bool = Field(description="added by the platform")
    duration_ms: int
    uses: int = Field(description="ready videos that use it")
    created_at: dt.datetime
    audio_url: str = Field(description="the audio, AAC in MP4")


class SoundList(Answer):
    items: list[SoundView]
    next_offset: int | None = Field(description="?offset= of the next page; null on the last")


class SoundPage(SoundView):
    videos: list[dict[str, Any]] = Field(description="ready videos that use it, newest first (as GET "
                                                     "/api/videos/{id} shows them)")
    next_offset: int | None


class ChallengeSummary(Answer):
    id: Id
    hashtag: str = Field(description="without '#', lower case")
    description: str
    sound: SoundView | None
    template: dict[str, Any] | None = Field(description="the edit decision list skeleton joining pre-fills")
    creator: Credited
    video_count: int = Field(description="ready videos with its hashtag or its id")
    created_at: dt.datetime
    trending_rank: int | None = Field(description="1 for the most trending now; null when not trending")


class ChallengeList(Answer):
    items: list[ChallengeSummary] = Field(description="trending first, then newest first")
    next_offset: int | None


class RankedVideo(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: Id
    score: float = Field(description="the engagement it drew (For You's trending weights)")


class ChallengeView(ChallengeSummary):
    videos: list[RankedVideo] = Field(description="its ready videos, most engaging first")
    next_offset: int | None
