"""The shapes the marketplace routes answer with, as `GET /api/openapi.json` describes them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from livecore.http import Id


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OfferParty(Answer):
    id: Id
    username: str
    display_name: str


class CreatorGrowth(Answer):
    followers_gained: int = Field(description="follows made in the last marketplace_growth_days days, still standing")
    rate: float = Field(description="followers_gained over the followers before that window")


class CreatorAudience(Answer):
    age_bands: dict[str, float] = Field(description="share of followers per age band (13-17 ... 55+); bands of "
                                                    "fewer than marketplace_group_size_min followers are merged into "
                                                    "\"other\", itself left out when that is still too small")
    regions: dict[str, float] = Field(description="share of followers per region, merged the same way")
    interests: dict[str, float] = Field(description="share of followers with each interest (a follower may have "
                                                    "several); interests too rare to show are left out")


class CreatorCard(Answer):
    creator: OfferParty
    listed: bool = Field(description="shown in search (opted in and above the thresholds)")
    followers: int
    recent_videos: int = Field(description="ready videos from the last marketplace_recent_days days (at most "
                                           "marketplace_recent_videos_max taken)")
    median_views: int = Field(description="median views of those videos")
    engagement_rate: float = Field(description="(likes + shares) / views of those videos")
    growth: CreatorGrowth
    audience: CreatorAudience
    computed_at_ms: int = Field(description="when the card was computed (refreshed every "
                                            "marketplace_card_refresh_s)")


class ListingView(Answer):
    listed: bool = Field(description="whether you are listed now")
    card: CreatorCard | None = Field(description="your card; null if you were never listed")


class CreatorPage(Answer):
    items: list[CreatorCard]
    next_cursor: str | None = Field(description="?cursor= for the next page (opaque); null on the last")


class OfferEscrow(Answer):
    coins: int = Field(description="taken from the advertiser's wallet when the offer was accepted")
    diamonds: int = Field(description="held for the creator")
    fee_percent: int = Field(description="the platform's share when it is paid")


class OfferView(Answer):
    id: Id
    advertiser: OfferParty
    creator: OfferParty
    brief: str
    price_cents: int
    due_date: dt.date
    state: Literal["offered", "accepted", "declined", "cancelled", "delivered", "expired"]
    escrow: OfferEscrow | None = Field(description="what is (or was) held; null before acceptance")
    creator_diamonds: int | None = Field(description="what the creator was paid on delivery")
    video_id: int | None = Field(description="the delivered video, labelled as a paid partnership")
    created_ms: int
    accepted_ms: int | None
    settled_ms: int | None


class OfferPage(Answer):
    items: list[OfferView] = Field(description="newest first")
    next_before: int | None = Field(description="?before= for the next page; null on the last")
