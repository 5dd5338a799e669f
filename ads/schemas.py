"""The shapes the ads routes take and answer with, as `GET /api/openapi.json` describes them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ads.events import Kind
from ads.targeting import AGE_BANDS
from livecore.http import NO_NUL, Id, max_items_setting

CENTS_MAX = 10**12  # ten billion dollars: far beyond any campaign, far below bigint millicents
TOKEN = r"^[A-Za-z0-9_.-]{1,2048}$"
EVENT_ID = r"^[A-Za-z0-9_.:-]{1,100}$"
URL = r"^https?://[^\s\x00]{1,2000}$"
Word = Annotated[str, Field(min_length=1, max_length=50, pattern=NO_NUL)]
AgeBand = Literal["18-24", "25-34", "35-44", "45-54", "55+"]
assert set(AgeBand.__args__) == set(AGE_BANDS)  # type: ignore[attr-defined]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdTargetingIn(Strict):
    age_bands: list[AgeBand] = Field(default_factory=list, max_length=len(AGE_BANDS),
                                     description="adult bands only; empty: any age (then minors may see it if "
                                                 "nothing else is targeted)")
    regions: list[Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]] = Field(default_factory=list, max_length=250,
                                                                             description="ISO 3166 country codes")
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2}$")]] = Field(default_factory=list, max_length=50)
    interests: list[Word] = Field(default_factory=list, max_length=50)


class AdBidIn(Strict):
    kind: Literal["cpm", "cpc"] = Field(description="cpm: cents per thousand impressions; cpc: cents per click")
    cents: int = Field(ge=1, le=CENTS_MAX)


class AdCreativeIn(Strict):
    video_id: Id = Field(description="a video you uploaded (POST /api/videos)")
    headline: str = Field(default="", max_length=100, pattern=NO_NUL)
    landing_url: str | None = Field(default=None, pattern=URL, description="an http(s) URL a click opens")


class AdGroupIn(Strict):
    name: str = Field(default="", max_length=100, pattern=NO_NUL)
    bid: AdBidIn
    targeting: AdTargetingIn = Field(default_factory=AdTargetingIn)
    frequency_per_day_max: int | None = Field(default=None, ge=1, le=1000,
                                              description="showings per viewer per UTC day; "
                                                          "ads_frequency_per_day_default when absent")
    creatives: list[AdCreativeIn] = Field(min_length=1, max_length=10)


class CampaignIn(Strict):
    name: str = Field(min_length=1, max_length=100, pattern=NO_NUL)
    budget_daily_cents: int = Field(ge=1, le=CENTS_MAX)
    budget_lifetime_cents: int = Field(ge=1, le=CENTS_MAX, description="held from your ad balance at creation")
    starts_at: AwareDatetime = Field(description="with its time zone (e.g. Z)")
    ends_at: AwareDatetime = Field(description="after starts_at")
    pacing: Literal["even", "front_loaded", "asap"] = "even"
    ad_groups: list[AdGroupIn] = Field(min_length=1, max_length=20)


class AdFundsIn(Strict):
    advertiser_id: Id
    cents: int = Field(ge=1, le=CENTS_MAX)
    reference: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
                           description="the payment's reference (an invoice number): credited once")


class AdEventIn(Strict):
    id: str = Field(pattern=EVENT_ID, description="the client's id for this event: a retry with the same id counts "
                                                  "once")
    impression: str = Field(pattern=TOKEN, description="the ad item's `impression` token")
    kind: Kind = Field(description="impression (shown), viewable (at least 50% of the player for at least 2 s), "
                                   "q25/q50/q75/complete (quartiles watched), click")


class AdEventBatch(Strict):
    events: list[AdEventIn] = Field(min_length=1, json_schema_extra=max_items_setting("ads_events_per_batch_max"))


class AdBidView(Strict):
    kind: Literal["cpm", "cpc"]
    cents: int


class AdTargetingView(Strict):
    age_bands: list[str]
    regions: list[str]
    languages: list[str]
    interests: list[str]


class AdCreativeView(Strict):
    id: Id
    video_id: Id
    headline: str
    landing_url: str | None


class AdGroupView(Strict):
    id: Id
    name: str
    bid: AdBidView
    targeting: AdTargetingView
    frequency_per_day_max: int
    creatives: list[AdCreativeView]


class CampaignView(Strict):
    id: Id
    advertiser_id: Id
    name: str
    state: Literal["active", "paused", "ended"]
    budget_daily_cents: int
    budget_lifetime_cents: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    pacing: Literal["even", "front_loaded", "asap"]
    spend_cents: int = Field(description="charged so far (whole cents)")
    billed_cents: int = Field(description="of which posted to the ledger")
    created_at: dt.datetime
    ended_at: dt.datetime | None = Field(description="when its advertiser ended it or it was settled; null while "
                                                     "it may run")
    settled_at: dt.datetime | None = Field(description="when its unspent budget went back to the ad balance")
    returned_cents: int = Field(description="the unspent budget given back to the ad balance (0 until settled)")
    ad_groups: list[AdGroupView]


class CampaignList(Strict):
    items: list[CampaignView] = Field(description="newest first")


class AdFigures(Strict):
    impressions: int
    viewable: int
    q25: int
    q50: int
    q75: int
    complete: int
    clicks: int
    spend_cents: float
    ctr: float = Field(description="clicks / impressions")
    ecpm_cents: float = Field(description="spend per thousand impressions")


class AdReportRow(AdFigures):
    start: dt.datetime = Field(description="the hour or UTC day this row covers")


class CampaignReport(Strict):
    campaign_id: Id
    period: Literal["hour", "day"]
    totals: AdFigures
    rows: list[AdReportRow]


class AdBalance(Strict):
    balance_cents: int = Field(description="prepaid, free to reserve for campaigns")
    held_cents: int = Field(description="reserved for campaigns, not yet spent")


class AdFunded(AdBalance):
    credited: bool = Field(description="false: this reference was credited before (nothing changed)")


class AdEventAnswer(Strict):
    accepted: int = Field(description="events counted now")
    duplicates: int = Field(description="events already counted (same id, or the impression's same kind)")
    refused: list[str] = Field(description="ids of events whose impression token is not valid (forged, another "
                                           "viewer's, or too old)")
