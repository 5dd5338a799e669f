"""The campaigns that may run, held in memory on each node and read again every `ads_refresh_ms`: an ad decision
reads no database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from ads.auction import BidKind
from ads.pacing import DAY_MS, HOUR_MS, Schedule
from ads.spend import SpendView
from ads.targeting import Targeting
from feeds.videos import videos_by_ids


@dataclass(frozen=True)
class Creative:
    id: int
    video: dict[str, Any]  # the feeds video as clients see it
    headline: str
    landing_url: str | None


@dataclass(frozen=True)
class AdGroup:
    id: int
    campaign_id: int
    bid_kind: BidKind
    bid_cents: int
    targeting: Targeting
    frequency_per_day_max: int
    creatives: tuple[Creative, ...]
    impressions: int
    clicks: int


@dataclass(frozen=True)
class LiveCampaign:
    id: int
    advertiser_id: int
    sponsor: dict[str, Any]  # {id, name}: who paid
    schedule: Schedule
    groups: tuple[AdGroup, ...]


_CAMPAIGNS = """
SELECT c.id, c.advertiser_id, a.display_name, c.starts_ms, c.ends_ms, c.budget_daily_cents, c.budget_lifetime_cents,
       c.pacing, c.charged_millicents
FROM ad_campaigns c JOIN accounts a ON a.id = c.advertiser_id
WHERE c.state = 'active' AND c.ends_ms > $1 AND c.starts_ms < $1 + $2
      AND c.charged_millicents < c.budget_lifetime_cents * 1000
ORDER BY c.id LIMIT $3
"""
_GROUPS = """
SELECT g.id, g.campaign_id, g.bid_kind, g.bid_cents, g.age_bands, g.regions, g.languages, g.interests,
       g.frequency_per_day_max, coalesce(s.impressions, 0) AS impressions, coalesce(s.clicks, 0) AS clicks
FROM ad_groups g LEFT JOIN (SELECT ad_group_id, sum(impressions)::bigint AS impressions, sum(clicks)::bigint AS clicks
                            FROM ad_stats_hourly WHERE campaign_id = ANY($1) GROUP BY 1) s ON s.ad_group_id = g.id
WHERE g.campaign_id = ANY($1)
"""
_SPEND_TODAY = """
SELECT campaign_id, sum(spend_millicents)::bigint AS today,
       (sum(spend_millicents) FILTER (WHERE hour_ms >= $3))::bigint AS this_hour
FROM ad_stats_hourly WHERE campaign_id = ANY($1) AND hour_ms >= $2 GROUP BY 1
"""


class Inventory:
    def __init__(self, pool: asyncpg.Pool, campaigns_max: int) -> None:
        self.pool = pool
        self.campaigns_max = campaigns_max
        self.campaigns: dict[int, LiveCampaign] = {}
        self.groups: dict[int, AdGroup] = {}
        self.version = 0  # counts the times `campaigns` was replaced, so what is built from it knows when to rebuild
        self.spend = SpendView()

    def replace(self, campaigns: dict[int, LiveCampaign]) -> None:
        self.campaigns = campaigns
        self.groups = {g.id: g for c in campaigns.values() for g in c.groups}
        self.version += 1

    async def refresh(self, now_ms: int) -> None:
        """Read the campaigns that run now (or within a day) with their groups, creatives and today's spend."""
        rows = await self.pool.fetch(_CAMPAIGNS, now_ms, DAY_MS, self.campaigns_max)
        ids = [r["id"] for r in rows]
        groups = await self.pool.fetch(_GROUPS, ids)
        creatives = await self.pool.fetch(
            "SELECT id, ad_group_id, video_id, headline, landing_url FROM ad_creatives WHERE ad_group_id = ANY($1)"
            " ORDER BY id", [g["id"] for g in groups])
        spent = await self.pool.fetch(_SPEND_TODAY, ids, now_ms - now_ms % DAY_MS, now_ms - now_ms % HOUR_MS)
        videos = await videos_by_ids(self.pool, list({c["video_id"] for c in creatives}))
        by_group: dict[int, list[Creative]] = {}
        for c in creatives:
            video = videos.get(c["video_id"])
            if video is not None and video.state == "ready":
                by_group.setdefault(c["ad_group_id"], []).append(
                    Creative(c["id"], video.public(), c["headline"], c["landing_url"]))
        by_campaign: dict[int, list[AdGroup]] = {}
        for g in groups:
            if g["id"] in by_group:
                by_campaign.setdefault(g["campaign_id"], []).append(AdGroup(
                    g["id"], g["campaign_id"], g["bid_kind"], g["bid_cents"],
                    Targeting(tuple(g["age_bands"]), tuple(g["regions"]), tuple(g["languages"]),
                              tuple(g["interests"])),
                    g["frequency_per_day_max"], tuple(by_group[g["id"]]), g["impressions"], g["clicks"]))
        self.replace({
            r["id"]: LiveCampaign(
                r["id"], r["advertiser_id"], {"id": r["advertiser_id"], "name": r["display_name"]},
                Schedule(r["starts_ms"], r["ends_ms"], r["budget_daily_cents"] * 1000,
                         r["budget_lifetime_cents"] * 1000, r["pacing"]),
                tuple(by_campaign[r["id"]]))
            for r in rows if r["id"] in by_campaign})
        self.spend.replace(now_ms, {r["id"]: r["charged_millicents"] for r in rows},
                           {s["campaign_id"]: s["today"] for s in spent},
                           {s["campaign_id"]: s["this_hour"] or 0 for s in spent})
