"""The inventory's refresh, without a database: it builds what it read in bounded steps (the event loop runs other
work in between), keeps the objects of rows that did not change, and nothing a decision sees changes until the new
campaigns and their ranking are installed together."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from ads.decisions import AuctionRule, Decider
from ads.inventory import Inventory, InventoryRows
from ads.pacing import DAY_MS, PacingRule
from ads.targeting import Audience
from feeds.videos import Video

NOW_MS = 1_800_000_000_000
RULE = AuctionRule(50, 0.01, 200, PacingRule(0.01, 1.3))
ANYONE = Audience("25-34", "US", "en", frozenset())


def rows(campaigns: int, impressions: dict[int, int] | None = None) -> InventoryRows:
    """Fresh row objects (as the driver returns each time) of a full read of `campaigns` campaigns of two CPM groups
    each."""
    impressions = impressions or {}
    campaign_rows: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    creatives: list[dict[str, Any]] = []
    videos: dict[int, Video] = {}
    for c in range(1, campaigns + 1):
        campaign_rows.append({"id": c, "advertiser_id": c, "display_name": f"brand {c}", "state": "active",
                              "starts_ms": NOW_MS - DAY_MS, "ends_ms": NOW_MS + DAY_MS, "budget_daily_cents": 1000,
                              "budget_lifetime_cents": 1000, "pacing": "asap", "charged_millicents": 0})
        for g in (2 * c, 2 * c + 1):
            groups.append({"id": g, "campaign_id": c, "bid_kind": "cpm", "bid_cents": 100 + g, "age_bands": [],
                           "regions": [], "languages": [], "interests": [], "frequency_per_day_max": 3})
            creatives.append({"id": g, "ad_group_id": g, "video_id": g, "headline": "h", "landing_url": None})
            videos[g] = Video(g, c, "ad", [], None, None, False, "ready", None, None, 1000, 720, 1280, 0, 0, 0,
                              dt.datetime(2027, 1, 1, tzinfo=dt.UTC), f"b{c}", f"brand {c}")
    spend = [{"campaign_id": c["id"], "charged_millicents": 0, "today": 0, "this_hour": 0} for c in campaign_rows]
    counts = [{"ad_group_id": g, "impressions": n, "clicks": 0} for g, n in impressions.items()]
    return InventoryRows(True, 0, campaign_rows, groups, creatives, videos, spend, counts)


async def test_a_refresh_keeps_unchanged_objects_and_installs_all_at_once() -> None:
    inventory = Inventory(pool=None, campaigns_max=100, build_per_turn_max=1000)  # type: ignore[arg-type]
    decider = Decider(inventory, RULE)
    inventory.install(await inventory.load(rows(3), NOW_MS))
    decider.rank()
    before = dict(inventory.campaigns)

    loaded = await inventory.load(rows(3, impressions={4: 10}), NOW_MS)  # group 4 (campaign 2) was shown 10 times
    ranking = await decider.prepare(loaded.live, 1000)
    assert inventory.campaigns == before and all(inventory.campaigns[c] is before[c] for c in before)  # not yet
    inventory.install(loaded)
    decider.install(ranking)
    after = inventory.campaigns
    assert after[1] is before[1] and after[3] is before[3]  # same rows: the same objects
    assert after[2] is not before[2] and after[2].groups[0].impressions == 10
    assert after[2].groups[1] is before[2].groups[1]  # the unchanged group of the changed campaign kept too
    assert inventory.groups[4].impressions == 10
    choice = decider.choose(ANYONE, NOW_MS, frozenset())
    assert choice is not None and choice.group.id == 7  # the highest bid (107) of what is installed


async def test_a_refresh_gives_the_event_loop_back_between_bounded_steps() -> None:
    inventory = Inventory(pool=None, campaigns_max=100, build_per_turn_max=30)  # type: ignore[arg-type]
    decider = Decider(inventory, RULE)
    turns = 0
    done = asyncio.Event()

    async def other_work() -> None:  # what decisions would be doing meanwhile
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    worker = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    loaded = await inventory.load(rows(60), NOW_MS)  # 60 campaigns, 120 groups, 120 creatives: 300 rows
    ranking = await decider.prepare(loaded.live, 30)  # 120 groups
    done.set()
    await worker
    assert turns >= 300 // 30 + 120 // 30  # at least one turn for other work per bounded step
    inventory.install(loaded)
    decider.install(ranking)
    assert len(inventory.campaigns) == 60 and len(inventory.groups) == 120
