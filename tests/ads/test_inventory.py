"""The inventory's refresh, without a database: it builds what it read in bounded steps (the event loop runs other
work in between), keeps the objects of rows that did not change, and nothing a decision sees changes until the new
campaigns and their ranking are installed together. What a refresh reads from PostgreSQL, and that reading only what
changed holds what reading everything holds: test_inventory_changes.py."""

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


def rows(campaigns: int, impressions: dict[int, int] | None = None, bids: dict[int, int] | None = None,
         cpc: int | None = None) -> InventoryRows:
    """Fresh row objects (as the driver returns each time) of a full read of `campaigns` campaigns of two groups
    each, CPM ones but `cpc`."""
    impressions, bids = impressions or {}, bids or {}
    campaign_rows: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    creatives: list[dict[str, Any]] = []
    videos: dict[int, Video] = {}
    for c in range(1, campaigns + 1):
        campaign_rows.append({"id": c, "advertiser_id": c, "display_name": f"brand {c}", "state": "active",
                              "starts_ms": NOW_MS - DAY_MS, "ends_ms": NOW_MS + DAY_MS, "budget_daily_cents": 1000,
                              "budget_lifetime_cents": 1000, "pacing": "asap", "charged_millicents": 0})
        for g in (2 * c, 2 * c + 1):
            groups.append({"id": g, "campaign_id": c, "bid_kind": "cpc" if g == cpc else "cpm",
                           "bid_cents": bids.get(g, 100 + g), "age_bands": [],
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

    # Group 4 (campaign 2) was shown 10 times; group 7 (campaign 3) bids 90 now, below group 6's 106.
    loaded = await inventory.load(rows(3, impressions={4: 10}, bids={7: 90}), NOW_MS)
    ranking = await decider.prepare(loaded, 1000)
    assert inventory.campaigns == before and all(inventory.campaigns[c] is before[c] for c in before)  # not yet
    assert decider.choose(ANYONE, NOW_MS, frozenset()).group.id == 7  # type: ignore[union-attr]
    inventory.install(loaded)
    decider.install(ranking)
    after = inventory.campaigns
    assert after[1] is before[1] and after[2] is before[2]  # same rows: the same objects (counts are beside them)
    assert inventory.counts[4] == (10, 0)
    assert after[3] is not before[3] and after[3].groups[1].bid_cents == 90
    assert after[3].groups[0] is before[3].groups[0]  # the unchanged group of the changed campaign kept too
    choice = decider.choose(ANYONE, NOW_MS, frozenset())
    assert choice is not None and choice.group.id == 6  # the highest bid (106) of what is installed


async def test_counts_that_moved_rank_a_cpc_group_again_and_keep_every_object() -> None:
    inventory = Inventory(pool=None, campaigns_max=100, build_per_turn_max=1000)  # type: ignore[arg-type]
    decider = Decider(inventory, RULE)
    inventory.install(await inventory.load(rows(3, cpc=2), NOW_MS))  # group 2 bids 102 cents a click
    decider.rank()
    before = dict(inventory.campaigns)
    assert decider.choose(ANYONE, NOW_MS, frozenset()).group.id == 2  # type: ignore[union-attr]  # eCPM 1,020

    moved = InventoryRows(False, 1, [], [], [], {}, [{"campaign_id": 1, "charged_millicents": 5, "today": 5,
                                                      "this_hour": 5}],
                          [{"ad_group_id": 2, "impressions": 100_000, "clicks": 1}])  # no click in 100,000
    loaded = await inventory.load(moved, NOW_MS)
    assert loaded.moved == set() and loaded.recounted == {2}
    ranking = await decider.prepare(loaded, 1000)
    inventory.install(loaded)
    decider.install(ranking)
    assert inventory.campaigns.keys() == before.keys()
    assert all(inventory.campaigns[c] is before[c] for c in before)
    assert inventory.spend.of(1, NOW_MS).total == 5 and inventory.watermark == 1
    choice = decider.choose(ANYONE, NOW_MS, frozenset())
    assert choice is not None and choice.group.id == 7  # group 2's eCPM is now about 1 cent: below the reserve


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
    ranking = await decider.prepare(loaded, 30)  # 120 groups
    done.set()
    await worker
    assert turns >= 300 // 30 + 120 // 30  # at least one turn for other work per bounded step
    inventory.install(loaded)
    decider.install(ranking)
    assert len(inventory.campaigns) == 60 and len(inventory.groups) == 120
