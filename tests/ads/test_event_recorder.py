"""Ad events of many requests stored in one transaction (ads/recorder.py, events.record_many) against real
PostgreSQL: random batches (new impressions, clicks, retries of a batch, an impression's event sent again under a
new id, budgets running out) written together in random groups count and charge exactly as the same batches written
one at a time; requests arriving together share transactions; what waits is bounded, and past the bound a request
is refused with a 503 while what was accepted is still stored."""

from __future__ import annotations

import asyncio
import random
import secrets
from typing import Any

import asyncpg
import pytest
from adsclient import CLIP, ads_of, funded_advertiser
from feedclient import post_video
from livenode import RunningNode

from ads import campaigns, events
from ads import invariants as ad_invariants
from ads.campaigns import NewAdGroup, NewCampaign, NewCreative
from ads.impressions import Impression
from ads.pacing import DAY_MS, HOUR_MS
from ads.recorder import EventRecorder
from ads.targeting import Targeting
from livecore.http import Problem

BATCHES = 80
USERS = 5
TWINS = 3
SEEDS = (1, 2, 3)


async def _twin_campaigns(node: RunningNode, rng: random.Random) -> list[tuple[list[int], list[tuple[int, str]]]]:
    """TWINS pairs of identical campaigns (small budgets, so charges reach them): for each pair, the two campaign ids
    and the ad groups (id, bid kind) of each, in the same order."""
    advertiser = await funded_advertiser(node, 100_000)
    video = (await post_video(node, advertiser["token"], CLIP))["id"]
    now_ms = node.node.clock.now_ms()
    twins = []
    for _ in range(TWINS):
        kinds = [rng.choice(("cpm", "cpc")) for _ in range(rng.randint(1, 2))]
        budget = rng.randint(3, 12)  # cents
        ids = []
        for _ in range(2):
            groups = [NewAdGroup(f"g{n}", kind, 100, Targeting(), 5, [NewCreative(video, "h", None)])
                      for n, kind in enumerate(kinds)]
            new = NewCampaign(f"twin{secrets.token_hex(3)}", budget, budget, now_ms - HOUR_MS, now_ms + DAY_MS, "asap",
                              groups)
            ids.append(await campaigns.create_campaign(node.node.pool, ads_of(node).accounts, advertiser["id"], new,
                                                       now_ms))
        twins.append(ids)
    result = []
    for ids in twins:
        rows = [await node.node.pool.fetch("SELECT id, bid_kind FROM ad_groups WHERE campaign_id = $1 ORDER BY id", c)
                for c in ids]
        result.append((ids, [[(r["id"], r["bid_kind"]) for r in side] for side in rows]))
    return result  # type: ignore[return-value]


def _random_batches(rng: random.Random, twins: list[Any], users: list[int]) -> list[tuple[int, list[dict]]]:  # type: ignore[type-arg]
    """Batches as plain descriptions (which twin, group, impression and event), for both sides to realise."""
    batches: list[tuple[int, list[dict]]] = []  # type: ignore[type-arg]
    impressions: list[dict] = []  # type: ignore[type-arg]
    for n in range(BATCHES):
        if batches and rng.random() < 0.15:  # a page sends a batch again (its answer was lost)
            batches.append(rng.choice(batches))
            continue
        user = rng.choice(users)
        batch = []
        for m in range(rng.randint(1, 4)):
            mine = [i for i in impressions if i["user"] == user]
            roll = rng.random()
            if mine and roll < 0.3:  # a click, or a quartile, of an impression served earlier
                kind = rng.choice(("click", "q25", "viewable"))
                batch.append({**rng.choice(mine), "kind": kind, "event": f"{n}.{m}"})
            elif mine and roll < 0.4:  # an event of an impression sent again under a new id
                batch.append({**rng.choice(mine), "kind": "impression", "event": f"{n}.{m}"})
            else:
                twin = rng.randrange(len(twins))
                impression = {"user": user, "twin": twin, "group": rng.randrange(len(twins[twin][1][0])),
                              "impression": f"{n}.{m}", "price": rng.randint(500, 4000)}
                impressions.append(impression)
                batch.append({**impression, "kind": "impression", "event": f"{n}.{m}"})
        batches.append((user, batch))
    return batches


def _realise(batches: list[Any], twins: list[Any], side: int, run: str, now_ms: int) -> list[events.Batch]:
    realised = []
    for user, described in batches:
        found = []
        for d in described:
            campaign_ids, groups = twins[d["twin"]]
            group_id, bid_kind = groups[side][d["group"]]
            impression = Impression(f"{run}-{side}-{d['impression']}", campaign_ids[side], group_id, 0, user,
                                    bid_kind, d["price"], now_ms)
            found.append(events.Event(f"{run}-{side}-{d['event']}", impression, d["kind"], now_ms))
        realised.append(events.Batch(user, found))
    return realised


async def _figures(pool: asyncpg.Pool, campaign_id: int) -> tuple[Any, ...]:
    charged = await pool.fetchval("SELECT charged_millicents FROM ad_campaigns WHERE id = $1", campaign_id)
    stats = await pool.fetchrow(
        "SELECT coalesce(sum(impressions), 0) AS i, coalesce(sum(viewable), 0) AS v, coalesce(sum(q25), 0) AS q,"
        " coalesce(sum(clicks), 0) AS c, coalesce(sum(spend_millicents), 0) AS s FROM ad_stats_hourly"
        " WHERE campaign_id = $1", campaign_id)
    counted = await pool.fetchval("SELECT coalesce(sum(millicents), 0) FROM ad_events WHERE campaign_id = $1",
                                  campaign_id)
    counts = await pool.fetch("SELECT impressions, clicks FROM ad_group_counts WHERE campaign_id = $1"
                              " ORDER BY ad_group_id", campaign_id)
    assert charged == stats["s"] == counted, (charged, stats, counted)  # every charge is in the roll-ups and events
    return charged, tuple(stats.values()), [tuple(r.values()) for r in counts]


@pytest.mark.parametrize("seed", SEEDS)
async def test_batches_written_together_count_and_charge_as_written_one_at_a_time(node: RunningNode,
                                                                                   seed: int) -> None:
    rng = random.Random(seed)
    pool = node.node.pool
    twins = await _twin_campaigns(node, rng)
    users = [rng.randint(10**12, 2 * 10**12) for _ in range(USERS)]
    described = _random_batches(rng, twins, users)
    run, now_ms = secrets.token_hex(4), node.node.clock.now_ms()
    alone = [await events.record(pool, b.user_id, b.events) for b in _realise(described, twins, 0, run, now_ms)]
    together: list[events.Recorded] = []
    batches = _realise(described, twins, 1, run, now_ms)
    while len(together) < len(batches):
        group = batches[len(together):len(together) + rng.randint(1, 12)]
        together += await events.record_many(pool, group)
    assert [(r.accepted, r.duplicates) for r in together] == [(r.accepted, r.duplicates) for r in alone]
    for campaign_ids, _ in twins:
        assert await _figures(pool, campaign_ids[1]) == await _figures(pool, campaign_ids[0])
    charged_alone = sum(m for r in alone for _, _, m in r.charges)
    assert charged_alone and sum(m for r in together for _, _, m in r.charges) == charged_alone
    await ads_of(node).post_spend()
    assert await ad_invariants.violations(pool) == []


async def test_requests_arriving_together_share_transactions(node: RunningNode) -> None:
    rng = random.Random(7)
    twins = await _twin_campaigns(node, rng)
    writes: list[int] = []
    recorder = EventRecorder(node.node.pool, pending_events_max=1000, write_events_max=1000,
                             on_write=lambda: writes.append(1))
    run, now_ms = secrets.token_hex(4), node.node.clock.now_ms()
    described = [(10**12 + n, [{"twin": 0, "group": 0, "impression": f"{n}", "event": f"{n}", "kind": "impression",
                                "price": 0}]) for n in range(40)]
    answers = await asyncio.gather(*(recorder.record(b) for b in _realise(described, twins, 0, run, now_ms)))
    assert [(a.accepted, a.duplicates) for a in answers] == [(1, 0)] * 40
    assert len(writes) == 1  # all arrived before the write began
    assert await node.node.pool.fetchval("SELECT count(*) FROM ad_events WHERE event_id LIKE $1", f"{run}-%") == 40


async def test_past_the_bound_a_request_is_refused_and_what_was_accepted_is_stored(node: RunningNode) -> None:
    rng = random.Random(8)
    twins = await _twin_campaigns(node, rng)
    campaign_id = twins[0][0][0]
    recorder = EventRecorder(node.node.pool, pending_events_max=3, write_events_max=1000)
    run, now_ms = secrets.token_hex(4), node.node.clock.now_ms()
    described = [(10**12 + n, [{"twin": 0, "group": 0, "impression": f"{n}", "event": f"{n}", "kind": "impression",
                                "price": 0}]) for n in range(5)]
    batches = _realise(described, twins, 0, run, now_ms)
    holder = await asyncpg.connect(node.node.settings.database_url)
    try:
        async with holder.transaction():  # the first write waits for the campaign's row (its events' foreign key)
            await holder.execute("SELECT 1 FROM ad_campaigns WHERE id = $1 FOR UPDATE", campaign_id)
            first = asyncio.create_task(recorder.record(batches[0]))
            while not await node.node.pool.fetchval(  # the write has taken it and waits
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'INSERT INTO ad_events%'"):
                assert not first.done(), first  # it cannot be stored while the row is held
                await asyncio.sleep(0.01)
            waiting = [asyncio.create_task(recorder.record(b)) for b in batches[1:4]]
            await asyncio.sleep(0)
            assert recorder.pending_events == 3
            with pytest.raises(Problem) as refused:
                await recorder.record(batches[4])
            assert refused.value.status == 503 and refused.value.slug == "ads-events-busy"
    finally:
        await holder.close()
    answers = await asyncio.gather(first, *waiting)
    assert [(a.accepted, a.duplicates) for a in answers] == [(1, 0)] * 4
    stored = await node.node.pool.fetchval("SELECT count(*) FROM ad_events WHERE event_id LIKE $1", f"{run}-%")
    assert stored == 4
