"""The campaigns that may run, held in memory on each node and read again every `ads_refresh_ms`: an ad decision
reads no database.

A refresh shares the event loop with the decisions it feeds, so what it does there is bounded: the rows are turned
into campaigns `build_per_turn_max` rows at a time, the loop free for decisions in between, and the new set is
swapped in whole at the end (a decision sees the old set or the new one, never half of each). Most rows are the same
from one second to the next, so a campaign, ad group or creative whose row did not change keeps the object built
before: a refresh allocates little, and the garbage collector has little to walk through (a full collection stops
the loop for as long as it walks every object the node holds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from ads.auction import BidKind
from ads.pacing import DAY_MS, HOUR_MS, Schedule
from ads.spend import SpendView
from ads.targeting import Targeting
from feeds.videos import Video, videos_by_ids

Row = Mapping[str, Any]  # an asyncpg Record, or a dict with the same names


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


@dataclass(frozen=True)
class InventoryRows:
    """What one refresh read: running campaigns, their ad groups (with click figures), creatives, today's spend and
    the creatives' videos."""

    campaigns: Sequence[Row]
    groups: Sequence[Row]
    creatives: Sequence[Row]
    spent: Sequence[Row]
    videos: Mapping[int, Video]


@dataclass(frozen=True)
class Loaded:
    """Campaigns built from one refresh's rows, not yet in use; each object with the row values it was made of."""

    now_ms: int
    rows: InventoryRows
    creatives: dict[int, tuple[Any, Creative]]
    groups: dict[int, tuple[Any, AdGroup]]
    campaigns: dict[int, tuple[Any, LiveCampaign]]

    def live(self) -> dict[int, LiveCampaign]:
        return {campaign_id: campaign for campaign_id, (_, campaign) in self.campaigns.items()}


class _Turns:
    """Counts work done in one turn of the event loop and gives the loop back once it reaches the bound."""

    def __init__(self, per_turn_max: int) -> None:
        self.per_turn_max = per_turn_max
        self.count = 0

    async def done(self, units: int) -> None:
        self.count += units
        if self.count >= self.per_turn_max:
            self.count = 0
            await asyncio.sleep(0)


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
    def __init__(self, pool: asyncpg.Pool, campaigns_max: int, build_per_turn_max: int) -> None:
        self.pool = pool
        self.campaigns_max = campaigns_max
        self.build_per_turn_max = build_per_turn_max
        self.campaigns: dict[int, LiveCampaign] = {}
        self.groups: dict[int, AdGroup] = {}
        self.version = 0  # counts the times `campaigns` was replaced, so what is built from it knows when to rebuild
        self.spend = SpendView()
        # The last build's objects with the row values they were made from, so an unchanged row keeps its object.
        self._creatives: dict[int, tuple[Any, Creative]] = {}
        self._groups: dict[int, tuple[Any, AdGroup]] = {}
        self._campaigns: dict[int, tuple[Any, LiveCampaign]] = {}

    def replace(self, campaigns: dict[int, LiveCampaign]) -> None:
        self.campaigns = campaigns
        self.groups = {g.id: g for c in campaigns.values() for g in c.groups}
        self.version += 1

    async def refresh(self, now_ms: int) -> Loaded:
        """Read the campaigns that run now (or within a day) with their groups, creatives and today's spend, and
        build them; `install` puts them to use."""
        rows = await self.pool.fetch(_CAMPAIGNS, now_ms, DAY_MS, self.campaigns_max)
        ids = [r["id"] for r in rows]
        groups = await self.pool.fetch(_GROUPS, ids)
        creatives = await self.pool.fetch(
            "SELECT id, ad_group_id, video_id, headline, landing_url FROM ad_creatives WHERE ad_group_id = ANY($1)"
            " ORDER BY id", [g["id"] for g in groups])
        spent = await self.pool.fetch(_SPEND_TODAY, ids, now_ms - now_ms % DAY_MS, now_ms - now_ms % HOUR_MS)
        videos = await videos_by_ids(self.pool, list({c["video_id"] for c in creatives}))
        return await self.load(InventoryRows(rows, groups, creatives, spent, videos), now_ms)

    async def load(self, rows: InventoryRows, now_ms: int) -> Loaded:
        """Build the campaigns from what a refresh read, at most `build_per_turn_max` rows per turn of the event
        loop; nothing changes for decisions until `install`."""
        work = _Turns(self.build_per_turn_max)
        loaded = Loaded(now_ms, rows, {}, {}, {})
        creatives = await self._creatives_by_group(rows.creatives, rows.videos, loaded.creatives, work)
        groups_by_campaign: dict[int, list[Row]] = {}
        for g in rows.groups:
            if g["id"] in creatives:
                groups_by_campaign.setdefault(g["campaign_id"], []).append(g)
        for r in rows.campaigns:
            if r["id"] in groups_by_campaign:
                groups = tuple(self._group(g, creatives[g["id"]], loaded.groups) for g in groups_by_campaign[r["id"]])
                loaded.campaigns[r["id"]] = self._campaign(r, groups)
            await work.done(1 + len(groups_by_campaign.get(r["id"], ())))
        return loaded

    def install(self, loaded: Loaded) -> None:
        """Swap in what `load` built, with the spend read beside it, in one step."""
        self._creatives, self._groups, self._campaigns = loaded.creatives, loaded.groups, loaded.campaigns
        self.replace(loaded.live())
        rows = loaded.rows
        self.spend.replace(loaded.now_ms, {r["id"]: r["charged_millicents"] for r in rows.campaigns},
                           {s["campaign_id"]: s["today"] for s in rows.spent},
                           {s["campaign_id"]: s["this_hour"] or 0 for s in rows.spent})

    async def _creatives_by_group(self, rows: Sequence[Row], videos: Mapping[int, Video],
                                  built: dict[int, tuple[Any, Creative]], work: _Turns) -> dict[int, list[Creative]]:
        by_group: dict[int, list[Creative]] = {}
        for c in rows:
            await work.done(1)
            video = videos.get(c["video_id"])
            if video is None or video.state != "ready":
                continue
            key = (video, c["headline"], c["landing_url"])
            known = self._creatives.get(c["id"])
            creative = known[1] if known is not None and known[0] == key else Creative(
                c["id"], video.public(), c["headline"], c["landing_url"])
            built[c["id"]] = (key, creative)
            by_group.setdefault(c["ad_group_id"], []).append(creative)
        return by_group

    def _group(self, g: Row, creatives: list[Creative],
               built: dict[int, tuple[Any, AdGroup]]) -> AdGroup:
        key = (tuple(g.values()), *creatives)  # unchanged creatives are the same objects: compared by identity
        known = self._groups.get(g["id"])
        if known is not None and known[0] == key:
            group = known[1]
        else:
            group = AdGroup(g["id"], g["campaign_id"], g["bid_kind"], g["bid_cents"],
                            Targeting(tuple(g["age_bands"]), tuple(g["regions"]), tuple(g["languages"]),
                                      tuple(g["interests"])),
                            g["frequency_per_day_max"], tuple(creatives), g["impressions"], g["clicks"])
        built[g["id"]] = (key, group)
        return group

    def _campaign(self, r: Row, groups: tuple[AdGroup, ...]) -> tuple[Any, LiveCampaign]:
        key = (r["advertiser_id"], r["display_name"], r["starts_ms"], r["ends_ms"], r["budget_daily_cents"],
               r["budget_lifetime_cents"], r["pacing"], *groups)
        known = self._campaigns.get(r["id"])
        if known is not None and known[0] == key:
            return known
        return key, LiveCampaign(
            r["id"], r["advertiser_id"], {"id": r["advertiser_id"], "name": r["display_name"]},
            Schedule(r["starts_ms"], r["ends_ms"], r["budget_daily_cents"] * 1000, r["budget_lifetime_cents"] * 1000,
                     r["pacing"]),
            groups)
