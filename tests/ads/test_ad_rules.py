"""Property tests of the ad rules: the feed's ad load, who may get a profiling-based ad, what an auction charges,
and the frequency caps under concurrent decisions (against the real Valkey)."""

from __future__ import annotations

import asyncio
import itertools
import math
import secrets

import hypothesis.strategies as st
import redis.asyncio as redis
from adworld import campaign, group, inventory_of
from hypothesis import HealthCheck, given, settings
from livenode import Servers

from ads.auction import Bid, run_auction
from ads.decisions import AuctionRule, Decider
from ads.frequency import FrequencyCaps, choose_within_caps
from ads.pacing import PacingRule
from ads.targeting import AGE_BANDS, MINOR_BAND, Audience, Targeting, reasons_for
from feeds.foryou import insert_ads

NOW_MS = 1_800_000_000_000
RULE = AuctionRule(50, 0.01, 200, PacingRule(0.01, 1.3))
REGIONS = ("US", "DE", "FR")
LANGUAGES = ("en", "de", "fr")
INTERESTS = ("cats", "cars", "chess", "cooking")


@given(items=st.integers(0, 60), interval=st.integers(1, 10), offers=st.lists(st.booleans(), min_size=60,
                                                                               max_size=60))
async def test_ads_follow_the_load_rule(items: int, interval: int, offers: list[bool]) -> None:
    async def ad_for(slot: int) -> dict | None:
        return {"kind": "ad", "slot": slot} if offers[slot] else None

    mixed = await insert_ads([{"kind": "video", "n": n} for n in range(items)], interval, ad_for)
    kinds = [i["kind"] for i in mixed]
    assert [i for i in mixed if i["kind"] == "video"] == [{"kind": "video", "n": n} for n in range(items)]
    assert not kinds or kinds[0] != "ad"
    assert all(not (a == b == "ad") for a, b in itertools.pairwise(kinds))
    run = 0  # organic items since the last ad (or the page's start)
    for kind in kinds:
        if kind == "ad":
            assert run >= interval
            run = 0
        else:
            run += 1


targetings = st.builds(
    Targeting,
    age_bands=st.lists(st.sampled_from(AGE_BANDS), unique=True, max_size=3).map(tuple),
    regions=st.lists(st.sampled_from(REGIONS), unique=True, max_size=2).map(tuple),
    languages=st.lists(st.sampled_from(LANGUAGES), unique=True, max_size=2).map(tuple),
    interests=st.lists(st.sampled_from(INTERESTS), unique=True, max_size=2).map(tuple))
audiences = st.builds(Audience, age_band=st.sampled_from((None, MINOR_BAND, *AGE_BANDS)),
                      region=st.sampled_from(REGIONS), language=st.sampled_from(LANGUAGES),
                      interests=st.frozensets(st.sampled_from(INTERESTS), max_size=3))


@given(targets=st.lists(targetings, min_size=1, max_size=8), audience=audiences,
       bids=st.lists(st.integers(1, 5000), min_size=8, max_size=8))
def test_no_profiling_based_ad_reaches_a_minor_or_unknown_age(targets: list[Targeting], audience: Audience,
                                                             bids: list[int]) -> None:
    groups = [group(n + 1, n + 1, cents=bids[n], targeting=t) for n, t in enumerate(targets)]
    decider = Decider(inventory_of([campaign(g.campaign_id, [g]) for g in groups]), RULE)
    choice = decider.choose(audience, NOW_MS, frozenset())
    if not audience.may_be_profiled:
        assert choice is None or not choice.group.targeting.profiling
        assert all(reasons_for(t, audience) is None for t in targets if t.profiling)
    if choice is not None:  # and whoever gets an ad is in its audience, with reasons
        assert choice.reasons and reasons_for(choice.group.targeting, audience) == choice.reasons


bids = st.builds(Bid, ad_group_id=st.integers(1, 10**6), kind=st.sampled_from(("cpm", "cpc")),
                 cents=st.integers(1, 100_000), ctr=st.floats(0.0005, 0.5))


@given(offered=st.lists(bids, max_size=10, unique_by=lambda b: b.ad_group_id), reserve=st.integers(0, 2000))
def test_the_auction_charges_second_price_above_the_reserve(offered: list[Bid], reserve: int) -> None:
    outcome = run_auction(offered, reserve)
    eligible = sorted((b for b in offered if b.ecpm_cents >= reserve), key=lambda b: (-b.ecpm_cents, b.ad_group_id))
    if not eligible:
        assert outcome is None
        return
    assert outcome is not None and outcome.winner == eligible[0]
    winner = outcome.winner
    runner_up = eligible[1].ecpm_cents if len(eligible) > 1 else 0.0
    clearing = max(reserve, runner_up)
    assert outcome.clearing_ecpm_cents == clearing
    own_max = winner.cents if winner.kind == "cpm" else winner.cents * 1000
    assert 0 <= outcome.price_millicents <= own_max  # never above its own bid
    # The price is the clearing eCPM in the winner's terms, rounded up to a whole millicent (or its bid).
    per_event = clearing if winner.kind == "cpm" else clearing / winner.ctr
    assert outcome.price_millicents == min(own_max, math.ceil(per_event - 1e-6))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(caps=st.lists(st.integers(1, 4), min_size=1, max_size=4), users=st.integers(1, 3),
       requests=st.integers(1, 20))
def test_concurrent_decisions_never_break_a_frequency_cap(servers: Servers, caps: list[int], users: int,
                                                         requests: int) -> None:
    groups = [group(n + 1, n + 1, cents=100 + n, cap=cap) for n, cap in enumerate(caps)]
    decider = Decider(inventory_of([campaign(g.campaign_id, [g]) for g in groups]), RULE)
    audience = Audience("25-34", "US", "en", frozenset())
    user_ids = [secrets.randbits(40) + 1 for _ in range(users)]  # users of this example's own in the shared Valkey

    async def scenario() -> list[tuple[int, int | None]]:
        client = redis.Redis.from_url(servers.redis_url)
        try:
            fcaps = FrequencyCaps(client)

            async def one(user_id: int) -> tuple[int, int | None]:
                choice = await choose_within_caps(decider, fcaps, user_id, audience, NOW_MS, retries_max=3)
                return user_id, choice.group.id if choice else None

            return await asyncio.gather(*(one(u) for u in user_ids for _ in range(requests)))
        finally:
            await client.aclose()

    loop = asyncio.new_event_loop()
    try:
        served = loop.run_until_complete(scenario())
    finally:
        loop.close()
    for user_id in user_ids:
        for g in groups:
            assert sum(1 for u, gid in served if u == user_id and gid == g.id) <= g.frequency_per_day_max
        got = sum(1 for u, gid in served if u == user_id and gid is not None)
        assert 1 <= got <= min(requests, sum(caps))  # the first decision of each user always finds a showing
