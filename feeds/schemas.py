"""The shapes the feeds routes answer with, as `GET /api/openapi.json` describes them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from livecore.http import Id


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Author(Answer):
    id: Id
    username: str
    display_name: str


class VideoView(Answer):
    id: Id
    state: Literal["processing", "ready", "failed"]
    failure: str | None = Field(description="why a failed video was refused")
    author: Author
    caption: str
    hashtags: list[str]
    sound_id: int | None
    challenge_id: int | None
    mature: bool = Field(description="shown to adults only")
    from_stream_id: int | None = Field(description="the live stream whose recording this is")
    duration_ms: int | None
    width: int | None
    height: int | None
    likes: int
    shares: int
    views: int
    created_at: dt.datetime
    video_url: str | None = Field(description="the MP4 (H.264/AAC, range requests), once ready")
    thumbnail_url: str | None


class NewVideoView(Answer):
    id: Id
    state: Literal["processing", "ready", "failed"]


class VideoPage(Answer):
    items: list[VideoView] = Field(description="newest first")
    next_cursor: str | None = Field(description="?cursor= for the next page; null on the last")


class RecordingChoiceView(Answer):
    stream_id: Id
    post_recording: bool


class EngagementAnswer(Answer):
    accepted: int = Field(description="events recorded now")
    duplicates: int = Field(description="events whose id was recorded before (counted once)")
    unknown_videos: list[int] = Field(description="video ids of events refused because no such ready video exists")


class LiveCard(Answer):
    kind: Literal["live"]
    stream_id: Id
    title: str
    creator: Author
    viewers: int
    thumbnail_url: str | None
    watch_url: str


class PartnershipSponsor(Answer):
    id: Id
    display_name: str


class VideoCardLabel(Answer):
    kind: Literal["paid-partnership"]
    text: str = Field(description="what the card shows, e.g. \"Paid partnership with Brand\"")
    sponsor: PartnershipSponsor = Field(description="who paid")


class VideoCard(Answer):
    kind: Literal["video"]
    video: VideoView
    source: str = Field(description="why it is in the feed: followed, trending, neighbours, hashtag, sound, "
                                    "challenge, interests, fresh, older (a long session past what those found)")
    liked: bool = Field(description="whether the viewer likes it")
    following: bool = Field(description="whether the viewer follows its author")
    labels: list[VideoCardLabel] = Field(description="labels other parts put on the video (a paid partnership)")


class Sponsor(Answer):
    id: Id
    name: str


class AdCard(Answer):
    kind: Literal["ad"]
    impression_id: str = Field(description="this showing of the ad")
    impression: str = Field(description="the signed impression token its events quote (POST /api/ads/events)")
    campaign_id: Id
    sponsor: Sponsor = Field(description="who paid for it (shown as Sponsored by ...)")
    reasons: list[str] = Field(description="the main reasons it was shown (\"Why this ad\")")
    headline: str
    landing_url: str | None = Field(description="where a click leads")
    video: VideoView


class FeedPage(Answer):
    items: list[VideoCard | LiveCard | AdCard]
    next_cursor: str | None = Field(description="?cursor= for the next page (opaque); null on the last")
