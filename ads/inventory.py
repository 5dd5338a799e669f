"""The campaigns that may run, held in memory on each node and brought up to date every `ads_refresh_ms`: an ad
decision reads no database.

A refresh reads only what changed since the one before (migration 0005 stamps each change with its transaction's id;
a refresh reads, in one snapshot, what was stamped from the previous snapshot's xmin on, so a change still being
written then is read by a later refresh). What changes all the time is a campaign's figures: its spend (for the
pacer, in `spend`) and its groups' impressions and clicks (for the predicted click rate, in `counts`), a few numbers
per campaign that moved, kept beside the campaign objects so that those stay as they are. What changes rarely is a
campaign's definition (state, budgets, schedule, its ad groups and creatives): such a campaign is read whole again,
and so is one whose creative's video is still being processed, until it is ready. Time moves campaigns too (a
schedule ends, one starts within the day): that is checked in memory at every refresh. And each refresh reads a
share of the held campaigns whole again, in turn, so that every one is read again within `ads_refresh_full_ms`, its
videos with it (the counts shown on the ad card; anything outside the ads' own tables): the cost of that is spread
evenly over the refreshes instead of coming as one read of everything. Only the first refresh reads everything (and
every refresh while the node holds `campaigns_max`: more may be waiting).

A refresh shares the event loop with the decisions it feeds, so what it does there is bounded: rows are turned into
campaigns `build_per_turn_max` at a time, the loop free for decisions in between, and the new set is swapped in whole
at the end (a decision sees the old set or the new one, never half of each). An object whose values did not change
is kept, so a refresh allocates little and the garbage collector has little to walk through.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import math
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


@dataclass(frozen=True)
class LiveCampaign:
    id: int
    advertiser_id: int
    sponsor: dict[str, Any]  # {id, name}: who paid
    schedule: Schedule
    groups: tuple[AdGroup, ...]


@dataclass(frozen=True)
class InventoryRows:
    """What one refresh read, in one snapshot. A full read has every campaign to hold; another only what changed
    since the read before: the campaigns whose definition changed (in any state, with all their ad groups and
    creatives), deleted campaigns, and the figures of campaigns whose spend or counts moved."""

    full: bool
    watermark: int  # the snapshot's xmin: the next read takes what was stamped from here on
    campaigns: Sequence[Row]  # id, advertiser_id, display_name, state, starts_ms, ends_ms, budgets, pacing
    groups: Sequence[Row]  # every ad group of those campaigns
    creatives: Sequence[Row]  # every creative of those groups
    videos: Mapping[int, Video]  # the creatives' videos
    spend: Sequence[Row]  # campaign_id, charged_millicents, today, this_hour: every campaign whose figures were read
    counts: Sequence[Row]  # ad_group_id, impressions, clicks: every group whose counts moved (or of a campaign read)
    deleted: Sequence[int] = ()
    reread: Sequence[int] = ()  # held campaigns asked for whole besides the changed ones: one missing was deleted
    reread_to: int = 0  # where the next refresh's share of campaigns read again in turn begins (a campaign id)


@dataclass(frozen=True)
class _Held:
    """A campaign that may run (active, not over, budget left), whether or not it runs now."""

    starts_ms: int
    ends_ms: int
    lifetime_millicents: int
    campaign: LiveCampaign | None  # None: no ad group has a ready creative
    waiting: bool  # a creative's video is not ready yet: the campaign is read again at every refresh until it is


@dataclass
class Loaded:
    """What a refresh built, not yet in use."""

    now_ms: int
    rows: InventoryRows
    held: dict[int, _Held]
    charged: dict[int, int]
    creatives: dict[int, tuple[Any, Creative]]
    counts: dict[int, tuple[int, int]]
    recounted: set[int]  # ad groups whose counts changed
    truncated: bool  # held campaigns_max: there may be more, so the next read is a full one
    live: dict[int, LiveCampaign] = dataclasses.field(default_factory=dict)
    groups: dict[int, AdGroup] = dataclasses.field(default_factory=dict)
    moved: set[int] = dataclasses.field(default_factory=set)  # campaigns whose object changed, came or went


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


_CAMPAIGN_COLUMNS = """c.id, c.advertiser_id, a.display_name, c.state, c.starts_ms, c.ends_ms, c.budget_daily_cents,
       c.budget_lifetime_cents, c.pacing, c.charged_millicents"""
_HELD_CAMPAIGNS = f"""
SELECT {_CAMPAIGN_COLUMNS}
FROM ad_campaigns c JOIN accounts a ON a.id = c.advertiser_id
WHERE c.state = 'active' AND c.ends_ms > $1 AND c.charged_millicents < c.budget_lifetime_cents * 1000
ORDER BY c.id LIMIT $2
"""
_CHANGED_CAMPAIGNS = f"""
SELECT {_CAMPAIGN_COLUMNS}
FROM ad_campaigns c JOIN accounts a ON a.id = c.advertiser_id
WHERE c.id IN (SELECT id FROM ad_campaigns WHERE definition_xid >= $1 UNION SELECT unnest($2::bigint[]))
ORDER BY c.id
"""
_GROUPS = """
SELECT id, campaign_id, bid_kind, bid_cents, age_bands, regions, languages, interests, frequency_per_day_max
FROM ad_groups WHERE campaign_id = ANY($1) ORDER BY id
"""
_CREATIVES = """
SELECT id, ad_group_id, video_id, headline, landing_url FROM ad_creatives WHERE ad_group_id = ANY($1) ORDER BY id
"""
_MOVED = "SELECT DISTINCT campaign_id FROM ad_stats_hourly WHERE changed_xid >= $1"
_SPEND = """
SELECT c.id AS campaign_id, c.charged_millicents, coalesce(s.today, 0)::bigint AS today,
       coalesce(s.this_hour, 0)::bigint AS this_hour
FROM ad_campaigns c LEFT JOIN (SELECT campaign_id, sum(spend_millicents) AS today,
                                      sum(spend_millicents) FILTER (WHERE hour_ms >= $3) AS this_hour
                               FROM ad_stats_hourly WHERE campaign_id = ANY($1) AND hour_ms >= $2 GROUP BY 1) s
     ON s.campaign_id = c.id
WHERE c.id = ANY($1)
"""
_COUNTS = "SELECT ad_group_id, impressions, clicks FROM ad_group_counts WHERE campaign_id = ANY($1)"
_COUNTS_MOVED = "SELECT ad_group_id, impressions, clicks FROM ad_group_counts WHERE changed_xid >= $1"


class Inventory:
    def __init__(self, pool: asyncpg.Pool, campaigns_max: int, build_per_turn_max: int,
                 full_every_ms: int = 60_000, refresh_ms: int = 1000) -> None:
        self.pool = pool
        self.campaigns_max = campaigns_max
        self.build_per_turn_max = build_per_turn_max
        self.full_every_ms = full_every_ms
        self.refresh_ms = refresh_ms
        self.campaigns: dict[int, LiveCampaign] = {}  # what decisions use: held and running within the day
        self.groups: dict[int, AdGroup] = {}
        self.counts: dict[int, tuple[int, int]] = {}  # (impressions, clicks) by ad group; none: (0, 0)
        self.version = 0  # counts the times `campaigns` was replaced, so what is built from it knows when to rebuild
        self.spend = SpendView()
        self.watermark: int | None = None  # None: nothing read yet, the next read is a full one
        self._reread_to = 0
        self._truncated = False
        self._held: dict[int, _Held] = {}
        self._charged: dict[int, int] = {}
        # The last build's creatives with the values they were made from, so an unchanged one keeps its object.
        self._creatives: dict[int, tuple[Any, Creative]] = {}

    def replace(self, campaigns: dict[int, LiveCampaign]) -> None:
        """Use these campaigns as they are (tests and benchmarks that build them without rows)."""
        self.campaigns = campaigns
        self.groups = {g.id: g for c in campaigns.values() for g in c.groups}
        self.version += 1

    def full_due(self) -> bool:
        """Whether the next refresh reads everything: the first one, and any while the node holds `campaigns_max`
        (more may be waiting)."""
        return self.watermark is None or self._truncated

    def reread(self) -> tuple[list[int], int]:
        """The held campaigns the next refresh reads whole whether or not they changed, and where the one after
        begins: those whose creative's video is not ready yet, and a share of all in turn, so that each is read
        again at least every `full_every_ms` (its videos' counts on the ad card, anything outside the ads' tables)."""
        held = sorted(self._held)
        share = min(len(held), math.ceil(len(held) * self.refresh_ms / self.full_every_ms))
        start = bisect.bisect_right(held, self._reread_to)
        turn = (held[start:] + held[:start])[:share]
        waiting = {c for c, h in self._held.items() if h.waiting}
        return sorted(waiting.union(turn)), turn[-1] if turn else 0

    async def refresh(self, now_ms: int) -> Loaded:
        """Read what changed since the last refresh (everything, the first time) and build it; `install` puts it to
        use. Nothing changes for decisions if the read fails."""
        return await self.load(await self.read(now_ms, self.full_due()), now_ms)

    async def read(self, now_ms: int, full: bool) -> InventoryRows:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            watermark = await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            deleted: list[int] = []
            reread, reread_to = [], 0
            if full or self.watermark is None:
                campaigns = await conn.fetch(_HELD_CAMPAIGNS, now_ms, self.campaigns_max)
                figured = [r["id"] for r in campaigns]
                counts = await conn.fetch(_COUNTS, figured)
            else:
                reread, reread_to = self.reread()
                campaigns = await conn.fetch(_CHANGED_CAMPAIGNS, self.watermark, reread)
                deleted = [r["id"] for r in await conn.fetch(
                    "SELECT id FROM ad_campaigns_deleted WHERE deleted_xid >= $1", self.watermark)]
                moved = {r["campaign_id"] for r in await conn.fetch(_MOVED, self.watermark)}
                figured = sorted({r["id"] for r in campaigns} | (moved & self._held.keys()))
                counts = [*await conn.fetch(_COUNTS_MOVED, self.watermark),
                          *(await conn.fetch(_COUNTS, [r["id"] for r in campaigns]) if campaigns else [])]
            ids = [r["id"] for r in campaigns]
            groups = await conn.fetch(_GROUPS, ids) if ids else []
            creatives = await conn.fetch(_CREATIVES, [g["id"] for g in groups]) if groups else []
            videos = await videos_by_ids(conn, list({c["video_id"] for c in creatives})) if creatives else {}  # type: ignore[arg-type]  # a connection reads as a pool does
            day_start, hour_start = now_ms - now_ms % DAY_MS, now_ms - now_ms % HOUR_MS
            spend = await conn.fetch(_SPEND, figured, day_start, hour_start) if figured else []
        return InventoryRows(full or self.watermark is None, watermark, campaigns, groups, creatives, videos, spend,
                             counts, deleted, reread, reread_to)

    async def load(self, rows: InventoryRows, now_ms: int) -> Loaded:
        """Build what a refresh read into the held campaigns, at most `build_per_turn_max` rows per turn of the
        event loop; nothing changes for decisions until `install`."""
        work = _Turns(self.build_per_turn_max)
        full = rows.full
        loaded = Loaded(now_ms, rows, {} if full else dict(self._held), {} if full else dict(self._charged),
                        {} if full else dict(self._creatives), {} if full else dict(self.counts), set(),
                        truncated=False)
        found = {r["id"] for r in rows.campaigns}
        for campaign_id in (*rows.deleted, *(c for c in rows.reread if c not in found)):
            loaded.held.pop(campaign_id, None)
        for s in rows.spend:
            loaded.charged[s["campaign_id"]] = s["charged_millicents"]
        counts, recounted = loaded.counts, loaded.recounted
        for c in rows.counts:  # a group's roll-ups are never deleted: one without a row here is where it was
            figures = (c["impressions"], c["clicks"])
            if self.counts.get(c["ad_group_id"]) != figures:
                recounted.add(c["ad_group_id"])
            counts[c["ad_group_id"]] = figures
        await work.done(len(rows.spend) + len(rows.counts))
        if full:
            recounted.update(g for g in self.counts if g not in counts)
        await self._define(rows, loaded, work)
        for campaign_id, held in list(loaded.held.items()):  # what time or spend ended
            if held.ends_ms <= now_ms or loaded.charged.get(campaign_id, 0) >= held.lifetime_millicents:
                del loaded.held[campaign_id]
        if (full and len(rows.campaigns) >= self.campaigns_max) or len(loaded.held) > self.campaigns_max:
            loaded.truncated = True
            loaded.held = {c: loaded.held[c] for c in sorted(loaded.held)[:self.campaigns_max]}
        self._live(loaded)
        return loaded

    def install(self, loaded: Loaded) -> None:
        """Swap in what `load` built, with the spend read beside it, in one step."""
        self._held, self._charged, self._creatives = loaded.held, loaded.charged, loaded.creatives
        self.counts = loaded.counts
        self._truncated = loaded.truncated
        self.watermark = loaded.rows.watermark
        self._reread_to = loaded.rows.reread_to
        if loaded.moved or loaded.rows.full:
            self.campaigns, self.groups = loaded.live, loaded.groups
            self.version += 1
        totals = {s["campaign_id"]: (s["charged_millicents"], s["today"], s["this_hour"]) for s in loaded.rows.spend}
        if loaded.rows.full:
            self.spend.replace(loaded.now_ms, totals)
        else:
            self.spend.update(loaded.now_ms, totals)

    async def _define(self, rows: InventoryRows, loaded: Loaded, work: _Turns) -> None:
        """Build the campaigns whose definition was read (or drop them: no longer held)."""
        creatives, waiting_groups = await self._creatives_by_group(rows.creatives, rows.videos, loaded.creatives,
                                                                   work)
        groups_by_campaign: dict[int, list[Row]] = {}
        for g in rows.groups:
            groups_by_campaign.setdefault(g["campaign_id"], []).append(g)
        for r in rows.campaigns:
            campaign_id = r["id"]
            lifetime = r["budget_lifetime_cents"] * 1000
            if r["state"] != "active" or loaded.charged.get(campaign_id, r["charged_millicents"]) >= lifetime:
                loaded.held.pop(campaign_id, None)
                continue
            group_rows = groups_by_campaign.get(campaign_id, [])
            known = self._held.get(campaign_id)
            old_groups = {g.id: g for g in known.campaign.groups} if known and known.campaign else {}
            groups = tuple(self._group(g, creatives[g["id"]], old_groups.get(g["id"]))
                           for g in group_rows if g["id"] in creatives)
            campaign = self._campaign(r, groups, known.campaign if known else None) if groups else None
            loaded.held[campaign_id] = _Held(r["starts_ms"], r["ends_ms"], lifetime, campaign,
                                             any(g["id"] in waiting_groups for g in group_rows))
            await work.done(1 + len(group_rows))

    async def _creatives_by_group(self, rows: Sequence[Row], videos: Mapping[int, Video],
                                  built: dict[int, tuple[Any, Creative]],
                                  work: _Turns) -> tuple[dict[int, list[Creative]], set[int]]:
        """The ready creatives by ad group, and the groups with a creative whose video is not ready yet."""
        by_group: dict[int, list[Creative]] = {}
        waiting: set[int] = set()
        for c in rows:
            await work.done(1)
            video = videos.get(c["video_id"])
            if video is None or video.state != "ready":
                if video is not None and video.state == "processing":
                    waiting.add(c["ad_group_id"])
                built.pop(c["id"], None)
                continue
            key = (video, c["headline"], c["landing_url"])
            known = self._creatives.get(c["id"])
            creative = known[1] if known is not None and known[0] == key else Creative(
                c["id"], video.public(), c["headline"], c["landing_url"])
            built[c["id"]] = (key, creative)
            by_group.setdefault(c["ad_group_id"], []).append(creative)
        return by_group, waiting

    @staticmethod
    def _group(g: Row, creatives: list[Creative], known: AdGroup | None) -> AdGroup:
        group = AdGroup(g["id"], g["campaign_id"], g["bid_kind"], g["bid_cents"],
                        Targeting(tuple(g["age_bands"]), tuple(g["regions"]), tuple(g["languages"]),
                                  tuple(g["interests"])),
                        g["frequency_per_day_max"], tuple(creatives))
        return known if known == group else group

    @staticmethod
    def _campaign(r: Row, groups: tuple[AdGroup, ...], known: LiveCampaign | None) -> LiveCampaign:
        campaign = LiveCampaign(
            r["id"], r["advertiser_id"], {"id": r["advertiser_id"], "name": r["display_name"]},
            Schedule(r["starts_ms"], r["ends_ms"], r["budget_daily_cents"] * 1000, r["budget_lifetime_cents"] * 1000,
                     r["pacing"]),
            groups)
        return known if known == campaign else campaign

    def _live(self, loaded: Loaded) -> None:
        """What decisions will use: the held campaigns with a ready creative that run within the day, and the ids
        of those whose object changed, came or went since the installed set."""
        horizon = loaded.now_ms + DAY_MS
        loaded.live = {c: h.campaign for c, h in loaded.held.items()
                       if h.campaign is not None and h.starts_ms < horizon}
        current = self.campaigns
        loaded.moved = {c for c, campaign in loaded.live.items() if current.get(c) is not campaign}
        loaded.moved.update(c for c in current if c not in loaded.live)
        if not loaded.moved:
            loaded.live, loaded.groups = current, self.groups
            return
        groups = dict(self.groups)
        for c in loaded.moved:
            old = current.get(c)
            for g in old.groups if old else ():
                del groups[g.id]
            new = loaded.live.get(c)
            for g in new.groups if new else ():
                groups[g.id] = g
        loaded.groups = groups
