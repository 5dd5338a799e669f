"""The refresh that reads only what changed (ads/inventory.py, migration 0005) against real PostgreSQL: after any
sequence of the changes campaigns go through (created, paused, resumed, ended, deleted, charged up to their budget,
clicked, their ad groups and creatives edited, added and deleted, their videos not ready yet, time passing their
start and end), a node that has refreshed all along holds exactly what a node reading everything afresh holds, and
ranks it the same; a change whose transaction was still open at a refresh is read by a later one; a refresh that
fails keeps the inventory it had, and the next one after PostgreSQL is back catches up."""

from __future__ import annotations

import asyncio
import random
import secrets
from typing import Any

import asyncpg
import pytest
from adsclient import CLIP, ads_of, funded_advertiser
from feedclient import post_video
from livenode import NodeFactory, RunningNode, Servers

from ads import campaigns, events
from ads.campaigns import NewAdGroup, NewCampaign, NewCreative
from ads.decisions import Decider
from ads.impressions import Impression
from ads.inventory import Inventory, Loaded
from ads.pacing import DAY_MS, HOUR_MS
from ads.targeting import Audience, Targeting
from livecore.embedded import EmbeddedPostgres
from livecore.outage import unreachable_part

STEPS = 60
CAMPAIGNS_MAX = 10_000
NO_TURNS = {"full_every_ms": 1, "refresh_ms": 0}  # the node under test reads no campaign again in turn: only changes
ANYONE = Audience("25-34", "US", "en", frozenset({"running", "cooking"}))


class World:
    """One advertiser's campaigns, changed at random through the product's own functions (and SQL where only an
    operator would change a row), with the clock driven by the test."""

    def __init__(self, node: RunningNode, advertiser: dict[str, Any], videos: list[int], rng: random.Random,
                 now_ms: int) -> None:
        self.node, self.pool, self.ads = node, node.node.pool, ads_of(node)
        self.advertiser, self.videos, self.rng, self.now_ms = advertiser, videos, rng, now_ms
        self.campaigns: list[int] = []
        self.served = 0

    async def create(self, starts_ms: int | None = None, budget_cents: int | None = None) -> None:
        rng = self.rng
        groups = [NewAdGroup(f"g{n}", rng.choice(("cpm", "cpc")), rng.randint(60, 400), self.targeting(),
                             rng.randint(1, 5), [NewCreative(rng.choice(self.videos), "h", None)
                                                 for _ in range(rng.randint(1, 2))])
                  for n in range(rng.randint(1, 3))]
        starts = starts_ms or self.now_ms + rng.choice((-HOUR_MS, -DAY_MS, 2 * DAY_MS, DAY_MS // 2))
        budget = budget_cents or rng.choice((2, 5, 1000))  # cents: small ones run out after a few charges
        new = NewCampaign(f"c{secrets.token_hex(3)}", budget, budget, starts,
                          starts + rng.choice((3 * HOUR_MS, 5 * DAY_MS)), rng.choice(("even", "asap")), groups)
        self.campaigns.append(await campaigns.create_campaign(self.pool, self.ads.accounts, self.advertiser["id"],
                                                              new, self.now_ms))

    def targeting(self) -> Targeting:
        if self.rng.random() < 0.4:
            return Targeting()
        return Targeting(interests=(self.rng.choice(("running", "cooking")),))

    async def step(self) -> None:
        """One change at random."""
        rng, pool = self.rng, self.pool
        if not self.campaigns or rng.random() < 0.15:
            return await self.create()
        campaign_id = rng.choice(self.campaigns)
        groups = await pool.fetch("SELECT id, bid_kind FROM ad_groups WHERE campaign_id = $1", campaign_id)
        change = rng.choice(("pause", "resume", "end", "charge", "charge", "charge", "click", "post", "bid",
                             "targeting", "creative+", "creative-", "group-", "video+", "video", "time", "delete"))
        if change in ("pause", "resume"):
            await pool.execute("UPDATE ad_campaigns SET state = $2 WHERE id = $1 AND state <> 'ended'", campaign_id,
                               "paused" if change == "pause" else "active")
        elif change == "end":
            await campaigns.end_campaign(pool, campaign_id, self.advertiser["id"], self.now_ms)
        elif change in ("charge", "click") and groups:
            group = rng.choice(groups)
            await self.event(campaign_id, group["id"], group["bid_kind"], "impression" if change == "charge" else
                             "click")
        elif change == "post":
            await self.ads.post_spend()
        elif change == "bid" and groups:
            await pool.execute("UPDATE ad_groups SET bid_cents = bid_cents + 7 WHERE id = $1", rng.choice(groups)["id"])
        elif change == "targeting" and groups:
            await pool.execute("UPDATE ad_groups SET interests = $2 WHERE id = $1", rng.choice(groups)["id"],
                               list(self.targeting().interests))
        elif change == "creative+" and groups:
            await pool.execute("INSERT INTO ad_creatives (ad_group_id, video_id, headline) VALUES ($1, $2, 'new')",
                               rng.choice(groups)["id"], rng.choice(self.videos))
        elif change == "creative-" and groups:
            await pool.execute("DELETE FROM ad_creatives WHERE id = (SELECT min(id) FROM ad_creatives"
                               " WHERE ad_group_id = $1)", rng.choice(groups)["id"])
        elif change == "group-" and len(groups) > 1:
            group_id = rng.choice(groups)["id"]
            await pool.execute("DELETE FROM ad_creatives WHERE ad_group_id = $1", group_id)
            await pool.execute("DELETE FROM ad_groups WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM ad_stats_hourly"
                               " WHERE ad_group_id = $1)", group_id)
        elif change == "video+" and groups:  # a creative whose video is still being processed
            video_id = await pool.fetchval("INSERT INTO videos (author_id, caption) VALUES ($1, 'later') RETURNING id",
                                           self.advertiser["id"])
            self.videos.append(video_id)
            await pool.execute("INSERT INTO ad_creatives (ad_group_id, video_id, headline) VALUES ($1, $2, 'soon')",
                               rng.choice(groups)["id"], video_id)
        elif change == "video":  # as the feeds pipeline does once a video is processed
            await pool.execute("UPDATE videos SET state = 'ready', duration_ms = 1000, width = 720, height = 1280,"
                               " ready_at = now() WHERE id = (SELECT min(id) FROM videos WHERE author_id = $1"
                               " AND state = 'processing')", self.advertiser["id"])
        elif change == "time":
            self.now_ms += rng.choice((HOUR_MS, DAY_MS // 2, 2 * DAY_MS))
        elif change == "delete":  # an operator removes a campaign that has no events yet
            async with pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM ad_events WHERE campaign_id = $1)",
                                           campaign_id):
                    await conn.execute("DELETE FROM ad_creatives WHERE ad_group_id IN (SELECT id FROM ad_groups"
                                       " WHERE campaign_id = $1)", campaign_id)
                    await conn.execute("DELETE FROM ad_groups WHERE campaign_id = $1", campaign_id)
                    await conn.execute("DELETE FROM ad_campaigns WHERE id = $1", campaign_id)
                    self.campaigns.remove(campaign_id)

    async def event(self, campaign_id: int, group_id: int, kind: Any, event_kind: Any) -> None:
        self.served += 1
        impression = Impression(f"imp{secrets.token_hex(6)}", campaign_id, group_id, 0, 1, kind, 1500, self.now_ms)
        batch = [events.Event(f"e{self.served}", impression, "impression", self.now_ms)]
        if event_kind == "click":
            batch.append(events.Event(f"c{self.served}", impression, "click", self.now_ms))
        await events.record(self.pool, self.advertiser["id"], batch)


async def refreshed(inventory: Inventory, decider: Decider, now_ms: int) -> Loaded:
    """What Ads.refresh does; what it read and built."""
    loaded = await inventory.refresh(now_ms)
    ranking = await decider.prepare(loaded, 50)
    inventory.install(loaded)
    decider.install(ranking)
    return loaded


def held(inventory: Inventory, decider: Decider, now_ms: int) -> dict[str, Any]:
    """What decisions see: the campaigns, each group's counts and bid, each campaign's spend, the rankings."""
    ranking = decider._ranking_now
    return {
        "campaigns": inventory.campaigns,
        "counts": {g: inventory.counts.get(g, (0, 0)) for g in inventory.groups},
        "spend": {c: inventory.spend.of(c, now_ms) for c in inventory.campaigns},
        "ranked": [(e.group.id, e.bid.ecpm_cents, e.group, e.campaign) for e in ranking.ranked],
        "untargeted": [e.group.id for e in ranking.untargeted],
    }


async def world(node: RunningNode, seed: int) -> World:
    await node.node.pool.execute("UPDATE ad_campaigns SET state = 'paused' WHERE state = 'active'")
    advertiser = await funded_advertiser(node, 10_000_000)
    videos = [(await post_video(node, advertiser["token"], CLIP))["id"] for _ in range(3)]
    return World(node, advertiser, videos, random.Random(seed), node.node.clock.now_ms())


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_reading_only_what_changed_holds_what_reading_everything_holds(
        own_postgres: EmbeddedPostgres, node_factory: NodeFactory, servers: Servers, seed: int) -> None:
    """On a PostgreSQL of its own: an operator's edits (a bid, a deleted campaign) are not the product's, and the
    shared database's money invariants need not see them."""
    node = await node_factory(on=Servers(own_postgres.url, servers.redis_url, servers.directory),
                              ads_refresh_ms=3_600_000)  # the node's own refresh stays out of the way
    w = await world(node, seed)
    inventory = Inventory(w.pool, CAMPAIGNS_MAX, 7, **NO_TURNS)
    decider = Decider(inventory, ads_of(node).decider.rule)
    await refreshed(inventory, decider, w.now_ms)
    incremental = 0
    for _ in range(STEPS):
        for _ in range(w.rng.randint(1, 3)):
            await w.step()
        incremental += not (await refreshed(inventory, decider, w.now_ms)).rows.full
        fresh = Inventory(w.pool, CAMPAIGNS_MAX, 7, **NO_TURNS)
        fresh_decider = Decider(fresh, decider.rule)
        await refreshed(fresh, fresh_decider, w.now_ms)
        assert held(inventory, decider, w.now_ms) == held(fresh, fresh_decider, w.now_ms)
    counted = await w.pool.fetch("SELECT ad_group_id, impressions, clicks FROM ad_group_counts ORDER BY 1")
    rolled_up = await w.pool.fetch("SELECT ad_group_id, sum(impressions) AS impressions, sum(clicks) AS clicks"
                                   " FROM ad_stats_hourly GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in counted] == [tuple(r) for r in rolled_up] and counted  # the counts the events kept
    assert incremental == STEPS  # every refresh after the first read only what changed
    mine = {c: inventory.campaigns[c] for c in w.campaigns if c in inventory.campaigns}
    assert mine and len(mine) < len(w.campaigns)  # the sequence left some running and stopped others


async def test_a_change_committed_after_a_refresh_began_is_read_by_the_next(node_factory: NodeFactory) -> None:
    node = await node_factory(ads_refresh_ms=3_600_000)
    w = await world(node, 7)
    for _ in range(2):
        await w.create(w.now_ms - HOUR_MS, 1000)
    first, second = w.campaigns
    inventory = Inventory(w.pool, CAMPAIGNS_MAX, 7, **NO_TURNS)
    decider = Decider(inventory, ads_of(node).decider.rule)
    await refreshed(inventory, decider, w.now_ms)
    assert {first, second} <= inventory.campaigns.keys()

    slow = await asyncpg.connect(node.node.settings.database_url)
    try:
        writing = slow.transaction()
        await writing.start()
        await slow.execute("UPDATE ad_campaigns SET state = 'paused' WHERE id = $1", first)  # its id: the older
        await w.pool.execute("UPDATE ad_campaigns SET state = 'paused' WHERE id = $1", second)  # committed first
        await refreshed(inventory, decider, w.now_ms)
        assert second not in inventory.campaigns and first in inventory.campaigns  # not committed yet
        await writing.commit()
    finally:
        await slow.close()
    await refreshed(inventory, decider, w.now_ms)
    assert first not in inventory.campaigns


async def test_every_campaign_is_read_again_in_turn_within_ads_refresh_full_ms(node_factory: NodeFactory) -> None:
    """What changes outside the ads' own tables (here a video's like count, shown on the ad card) is read with each
    campaign's turn: a share of the held campaigns at each refresh, all of them within `full_every_ms`."""
    node = await node_factory(ads_refresh_ms=3_600_000)
    w = await world(node, 5)
    for _ in range(4):
        await w.create(w.now_ms - HOUR_MS, 1000)
    inventory = Inventory(w.pool, CAMPAIGNS_MAX, 7, full_every_ms=3_000, refresh_ms=1_000)
    decider = Decider(inventory, ads_of(node).decider.rule)
    await refreshed(inventory, decider, w.now_ms)
    assert set(w.campaigns) <= inventory.campaigns.keys()
    await w.pool.execute("UPDATE videos SET likes = likes + 5 WHERE id = ANY($1)", w.videos)

    def liked() -> set[int]:
        return {c for c in w.campaigns
                if all(cr.video["likes"] == 5 for g in inventory.campaigns[c].groups for cr in g.creatives)}

    seen = []
    for _ in range(3):
        await refreshed(inventory, decider, w.now_ms)
        seen.append(len(liked()))
    assert seen == [2, 4, 4]  # a third of four, rounded up, at each refresh: all of them by the second
    assert not inventory.full_due()


async def test_a_refresh_that_fails_keeps_the_inventory_and_the_next_catches_up(
        own_postgres: EmbeddedPostgres, node_factory: NodeFactory, servers: Servers) -> None:
    node = await node_factory(on=Servers(own_postgres.url, servers.redis_url, servers.directory),
                              ads_refresh_ms=3_600_000)
    ads = ads_of(node)
    w = await world(node, 11)
    for _ in range(3):
        await w.create(w.now_ms - HOUR_MS, 1000)
    paused, charged, kept = w.campaigns
    await ads.refresh()
    before = dict(ads.inventory.campaigns)
    assert set(w.campaigns) <= before.keys()

    await w.pool.execute("UPDATE ad_campaigns SET state = 'paused' WHERE id = $1", paused)
    group = await w.pool.fetchrow("SELECT id, bid_kind FROM ad_groups WHERE campaign_id = $1 LIMIT 1", charged)
    await w.event(charged, group["id"], group["bid_kind"], "impression")
    await asyncio.to_thread(own_postgres.stop)
    try:
        with pytest.raises(Exception) as failed:
            await ads.refresh()
        assert unreachable_part(failed.value) == "database"
        assert ads.inventory.campaigns == before  # the last good inventory goes on serving
        assert paused in ads.inventory.campaigns and ads.inventory.spend.of(charged, w.now_ms).total == 0
        assert ads.decider.choose(ANYONE, w.now_ms, frozenset()) is not None
    finally:
        await asyncio.to_thread(own_postgres.start)
    await ads.refresh()
    assert paused not in ads.inventory.campaigns and kept in ads.inventory.campaigns
    spend = ads.inventory.spend.of(charged, w.now_ms)
    assert spend.total == spend.today == spend.this_hour == 1500
