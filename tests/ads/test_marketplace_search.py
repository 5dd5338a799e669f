"""Creator cards and search: cards computed from randomized followers and videos never show an audience group of
fewer than k followers (and show every group that has k); minors and creators below the thresholds cannot be
listed; search with random filters, sorts and page sizes returns exactly the cards that match, in order, across
cursor pages; stale cards are computed again by the refresh job."""

from __future__ import annotations

import datetime as dt
import random
import secrets
import statistics
from typing import Any
from urllib.parse import urlencode

import hypothesis.strategies as st
import orjson
import pytest
from hypothesis import given
from livenode import RunningNode
from marketplace_people import Person, advertiser, api, follow, make_people, ready_videos

from ads.marketplace import MARKETPLACE, Marketplace
from ads.marketplace.audience import AGE_BANDS, OTHER, age_band, overlapping_shares, partition_shares
from ads.marketplace.cards import index_audience
from livecore.clock import ManualClock

K = 5
MARKET = {"marketplace_followers_min": 3, "marketplace_recent_videos_min": 2, "marketplace_group_size_min": K,
          "account_cache_ms": 0, "token_ttl_s": 30 * 86400}
REGIONS = ("US", "GB", "DE", "BR", "JP", "NG")
INTERESTS = ("music", "sport", "food", "games", "travel", "beauty")
SEEDS = range(6)


@pytest.fixture
async def market(node_factory: Any) -> RunningNode:
    return await node_factory(clock=ManualClock(), **MARKET)


@given(st.dictionaries(st.sampled_from([*REGIONS, "XX", "YY"]), st.integers(0, 30)), st.integers(2, 12))
def test_no_group_under_k_is_ever_shown(counts: dict[str, int], k: int) -> None:
    total = sum(counts.values())
    shown = partition_shares(counts, total, k)
    named = {name for name in shown if name != OTHER}
    assert named == {name for name, n in counts.items() if n >= k} or total < k
    assert all(counts[name] >= k for name in named)
    merged = sum(n for name, n in counts.items() if name not in named)
    assert (OTHER in shown) == (total >= k and merged >= k)
    assert all(counts[name] >= k for name in overlapping_shares(counts, total, k))


def _person(rng: random.Random, today: dt.date) -> Person:
    age_days = rng.randint(13 * 366, 70 * 365)
    region = rng.choices(REGIONS, weights=(8, 4, 2, 1, 1, 1))[0]
    return Person(today - dt.timedelta(days=age_days), region, tuple(rng.sample(INTERESTS, rng.randint(0, 3))))


def _check_partition(shown: dict[str, float], counts: dict[str, int], total: int) -> None:
    named = {name for name in shown if name != OTHER}
    assert named == {name for name, n in counts.items() if n >= K}, (shown, counts)
    for name in named:
        assert shown[name] == round(counts[name] / total, 4)
    merged = sum(n for name, n in counts.items() if name not in named)
    if OTHER in shown:
        assert merged >= K and shown[OTHER] == round(merged / total, 4)
    else:
        assert merged < K


@pytest.mark.parametrize("seed", SEEDS)
async def test_cards_of_random_audiences_suppress_small_groups(market: RunningNode, seed: int) -> None:
    rng = random.Random(seed)
    pool, today = market.node.pool, market.node.today()
    brand = await advertiser(market)
    creator = await market.signup()
    people = [_person(rng, today) for _ in range(rng.randint(K, 60))]
    await follow(pool, await make_people(pool, people), creator["id"])
    views = [(rng.randint(0, 5000), rng.randint(0, 300), rng.randint(0, 50)) for _ in range(rng.randint(2, 8))]
    await ready_videos(pool, creator["id"], views)
    status, listed = await api(market, "PUT", "/api/marketplace/listing", creator["token"], {"listed": True})
    assert status == 200 and listed["listed"] and listed["card"]["listed"], listed
    card = listed["card"]
    status, seen = await api(market, "GET", f"/api/marketplace/creators/{creator['id']}", brand["token"])
    assert status == 200 and seen == card, seen

    total = len(people)
    ages: dict[str, int] = {}
    regions: dict[str, int] = {}
    interests: dict[str, int] = {}
    for p in people:
        band = age_band(p.birth_date, today)
        assert band is not None
        ages[band] = ages.get(band, 0) + 1
        regions[p.region] = regions.get(p.region, 0) + 1
        for interest in p.interests:
            interests[interest] = interests.get(interest, 0) + 1
    assert card["followers"] == total
    _check_partition(card["audience"]["age_bands"], ages, total)
    _check_partition(card["audience"]["regions"], regions, total)
    assert card["audience"]["interests"] == {name: round(n / total, 4) for name, n in interests.items() if n >= K}
    assert card["median_views"] == int(statistics.median(v for v, _, _ in views))
    all_views = sum(v for v, _, _ in views)
    expected_rate = round(sum(like + share for _, like, share in views) / all_views, 4) if all_views else 0
    assert card["engagement_rate"] == expected_rate


async def test_minors_and_creators_below_the_thresholds_are_not_listed(market: RunningNode) -> None:
    pool, today = market.node.pool, market.node.today()
    minor = await market.signup(birth_date=(today - dt.timedelta(days=17 * 365)).isoformat())
    crowd = await make_people(pool, [Person(dt.date(1990, 1, 1), "US", ())] * 10)
    await follow(pool, crowd, minor["id"])
    await ready_videos(pool, minor["id"], [(10, 1, 0)] * 3)
    status, refused = await api(market, "PUT", "/api/marketplace/listing", minor["token"], {"listed": True})
    assert status == 403 and refused["type"] == "livecore:rule-adults-only", refused
    brand = await advertiser(market)
    status, hidden = await api(market, "GET", f"/api/marketplace/creators/{minor['id']}", brand["token"])
    assert status == 404, hidden

    small = await market.signup()
    await follow(pool, crowd[:2], small["id"])
    await ready_videos(pool, small["id"], [(10, 1, 0)] * 3)
    status, refused = await api(market, "PUT", "/api/marketplace/listing", small["token"], {"listed": True})
    assert status == 409 and refused["type"] == "livecore:below-thresholds" and refused["followers"] == 2, refused



async def test_a_creator_reads_their_own_listing_whether_listed_or_not(market: RunningNode) -> None:
    pool = market.node.pool
    creator = await market.signup()
    status, never = await api(market, "GET", "/api/marketplace/listing", creator["token"])
    assert status == 200 and never == {"listed": False, "card": None}, never
    await follow(pool, await make_people(pool, [Person(dt.date(1990, 1, 1), "GB", ())] * 12), creator["id"])
    await ready_videos(pool, creator["id"], [(10, 1, 0)] * 2)
    status, listed = await api(market, "PUT", "/api/marketplace/listing", creator["token"], {"listed": True})
    assert status == 200, listed
    status, read = await api(market, "GET", "/api/marketplace/listing", creator["token"])
    assert status == 200 and read == listed, read
    status, _ = await api(market, "PUT", "/api/marketplace/listing", creator["token"], {"listed": False})
    status, out = await api(market, "GET", "/api/marketplace/listing", creator["token"])
    assert status == 200 and not out["listed"] and out["card"]["followers"] == 12, out

async def test_stale_cards_are_computed_again(market: RunningNode) -> None:
    pool = market.node.pool
    clock = market.node.clock
    assert isinstance(clock, ManualClock)
    creator = await market.signup()
    crowd = await make_people(pool, [Person(dt.date(1990, 1, 1), "GB", ("food",))] * 12)
    await follow(pool, crowd[:6], creator["id"])
    await ready_videos(pool, creator["id"], [(10, 1, 0)] * 2)
    status, listed = await api(market, "PUT", "/api/marketplace/listing", creator["token"], {"listed": True})
    assert status == 200 and listed["card"]["followers"] == 6
    await follow(pool, crowd[6:], creator["id"])
    world: Marketplace = market.app[MARKETPLACE]
    await world.refresh_cards()  # not stale yet: left as it is
    status, same = await api(market, "GET", f"/api/marketplace/creators/{creator['id']}", creator["token"])
    assert same["followers"] == 6, same
    clock.advance(market.node.settings.marketplace_card_refresh_s)
    await world.refresh_cards()
    row = await pool.fetchrow("SELECT followers, computed_ms FROM marketplace_creators WHERE creator_id = $1",
                              creator["id"])
    assert row["followers"] == 12 and row["computed_ms"] == clock.now_ms()

    status, unlisted = await api(market, "PUT", "/api/marketplace/listing", creator["token"], {"listed": False})
    assert status == 200 and not unlisted["listed"] and not unlisted["card"]["listed"], unlisted
    brand = await advertiser(market)
    status, hidden = await api(market, "GET", f"/api/marketplace/creators/{creator['id']}", brand["token"])
    assert status == 404, hidden
    never = await market.signup()
    status, nothing = await api(market, "PUT", "/api/marketplace/listing", never["token"], {"listed": False})
    assert status == 200 and nothing == {"listed": False, "card": None}, nothing


def _synthetic_card(rng: random.Random, tag: str) -> dict[str, Any]:
    bands = rng.sample(AGE_BANDS, rng.randint(0, 4))
    regions = rng.sample(REGIONS, rng.randint(0, 3))
    return {
        "followers": rng.choice([rng.randint(0, 100_000), 5000]),  # ties on the sort key, paged by id
        "median_views": rng.randint(0, 50_000),
        "engagement_rate": round(rng.random() * 0.2, 4),
        "growth_rate": round(rng.random(), 4),
        "age_shares": {b: round(rng.random() * 0.5, 4) for b in bands},
        "region_shares": {r: round(rng.random() * 0.6, 4) for r in regions},
        "interest_shares": {tag: 0.5, **{i: 0.2 for i in rng.sample(INTERESTS, rng.randint(0, 2))}},
    }


async def _insert_cards(market: RunningNode, cards: list[dict[str, Any]]) -> list[int]:
    pool = market.node.pool
    ids = await make_people(pool, [Person(dt.date(1990, 1, 1), "US", ())] * len(cards))
    await pool.executemany(
        "INSERT INTO marketplace_creators (creator_id, eligible, followers, recent_videos, median_views,"
        " engagement_rate, growth_rate, age_shares, region_shares, interest_shares, computed_ms)"
        " VALUES ($1, true, $2, 3, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9)",
        [(i, c["followers"], c["median_views"], c["engagement_rate"], c["growth_rate"],
          orjson.dumps(c["age_shares"]).decode(), orjson.dumps(c["region_shares"]).decode(),
          orjson.dumps(c["interest_shares"]).decode(), market.node.clock.now_ms()) for i, c in zip(ids, cards,
                                                                                                strict=True)])
    await index_audience(pool, ids)
    return ids


_SORT_KEYS = {"followers": "followers", "engagement_rate": "engagement_rate", "median_views": "median_views",
              "growth": "growth_rate"}


def _random_query(rng: random.Random, tag: str) -> dict[str, Any]:
    query: dict[str, Any] = {"interest": tag, "sort": rng.choice(list(_SORT_KEYS)), "limit": rng.randint(1, 9)}
    if rng.random() < 0.5:
        query["followers_min"] = rng.randint(0, 80_000)
    if rng.random() < 0.4:
        query["engagement_rate_min"] = round(rng.random() * 15, 2)
    if rng.random() < 0.4:
        query["median_views_min"] = rng.randint(0, 40_000)
    if rng.random() < 0.4:
        query["age_band"] = rng.choice(AGE_BANDS)
        query["age_band_share_min"] = rng.choice([0, round(rng.random() * 40, 1)])
    if rng.random() < 0.4:
        query["region"] = rng.choice(REGIONS).lower()
        query["region_share_min"] = rng.choice([0, round(rng.random() * 40, 1)])
    return query


def _matches(card: dict[str, Any], q: dict[str, Any]) -> bool:
    if card["followers"] < q.get("followers_min", 0) or card["median_views"] < q.get("median_views_min", 0):
        return False
    if card["engagement_rate"] < q.get("engagement_rate_min", 0) / 100:
        return False
    if "age_band" in q and not card["age_shares"].get(q["age_band"], -1) >= q["age_band_share_min"] / 100:
        return False
    region = q.get("region", "").upper()
    return not region or card["region_shares"].get(region, -1) >= q["region_share_min"] / 100


@pytest.mark.parametrize("candidates_max", [2, 5000])  # walking the sort order, and reading candidates by id
async def test_search_returns_exactly_the_matching_cards_in_order(node_factory: Any, candidates_max: int) -> None:
    market = await node_factory(clock=ManualClock(), marketplace_search_candidates_max=candidates_max, **MARKET)
    rng = random.Random(candidates_max)
    tag = f"t{secrets.token_hex(4)}"  # scopes every query to this test's cards
    cards = [_synthetic_card(rng, tag) for _ in range(80)]
    ids = await _insert_cards(market, cards)
    brand = await advertiser(market)
    for _ in range(30):
        q = _random_query(rng, tag)
        key = _SORT_KEYS[q["sort"]]
        expected = sorted((i for i, c in zip(ids, cards, strict=True) if _matches(c, q)),
                          key=lambda i: (cards[ids.index(i)][key], i), reverse=True)
        found: list[int] = []
        cursor = None
        while True:
            params = {**q, **({"cursor": cursor} if cursor else {})}
            query = urlencode(params)
            status, page = await api(market, "GET", f"/api/marketplace/creators?{query}", brand["token"])
            assert status == 200, (q, page)
            assert len(page["items"]) <= q["limit"]
            found += [item["creator"]["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert found == expected, q

    status, refused = await api(market, "GET", "/api/marketplace/creators?cursor=bm9wZQ", brand["token"])
    assert status == 400 and refused["type"] == "livecore:bad-cursor", refused
    viewer = await market.signup()
    status, refused = await api(market, "GET", "/api/marketplace/creators", viewer["token"])
    assert status == 403 and refused["type"] == "livecore:not-an-advertiser", refused
