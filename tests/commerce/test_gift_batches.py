"""Gifts committed in batches: each gift in a batch has its own outcome, a batch the database refuses is retried
gift by gift, and concurrent batches on two nodes never deadlock and add up to the journal."""

from __future__ import annotations

import asyncio
import random
import secrets
from dataclasses import replace

import asyncpg
import pytest
from money import api, assert_invariants, buy_coins, coins, commerce_of, key

from commerce import gifts
from commerce.gift_batches import GiftOrder
from livecore.http import Problem


def _batches(node) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(batches committed, gifts in them) so far, from the node's metrics."""
    registry = node.node.registry
    return (registry.get_sample_value("livecore_gift_batch_gifts_count") or 0.0,
            registry.get_sample_value("livecore_gift_batch_gifts_sum") or 0.0)


async def _outcome(call) -> object:  # type: ignore[no-untyped-def]
    try:
        return await call
    except Problem as problem:
        return problem.status, problem.slug


async def test_each_gift_in_one_batch_gets_its_own_outcome(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(gift_batch_workers=1, gift_coins_per_day_max=40)
    creator = await node.signup()
    stream = await node.create_stream(creator["token"])
    ended = await node.create_stream(creator["token"], "ended already")
    status, _ = await api(node, "POST", f"/api/streams/{ended['id']}/end", creator["token"])
    assert status == 200
    rich, poor = await node.signup(), await node.signup()
    await buy_coins(node, rich["token"])
    shop = commerce_of(node)
    rich_account, poor_account = await node.node.accounts.get(rich["id"]), await node.node.accounts.get(poor["id"])
    for known in (stream, ended):
        await shop.creator_of(known["id"])  # remembered: nothing below waits before its gift is queued
    repeated = key()
    batches_before, gifts_before = _batches(node)
    results = await asyncio.gather(*[_outcome(gifts.send_gift(shop, *args)) for args in [
        (rich_account, stream["id"], "heart", 1, repeated),  # 5: ok
        (rich_account, stream["id"], "heart", 1, repeated),  # the same key in the same batch: the first result
        (rich_account, stream["id"], "doughnut", 1, key()),  # 30: ok, 35 spent today
        (rich_account, stream["id"], "heart", 1, key()),  # 5: ok, exactly the daily 40
        (rich_account, stream["id"], "rose", 1, key()),  # 1 over the daily limit
        (poor_account, stream["id"], "rose", 1, key()),  # no coins
        (rich_account, ended["id"], "rose", 1, key()),  # not live
    ]])
    batches_after, gifts_after = _batches(node)
    assert (batches_after - batches_before, gifts_after - gifts_before) == (1, 7), "the gifts were not one batch"
    first, again, doughnut, heart, *refused = results
    assert isinstance(first, dict) and isinstance(again, dict) and isinstance(doughnut, dict)
    assert again["transaction_id"] == first["transaction_id"] and again["replayed"] and not first["replayed"]
    assert [first["coins_balance"], doughnut["coins_balance"], heart["coins_balance"]] == [95, 65, 60]
    assert refused == [(429, "rule-daily-spend-limit"), (402, "insufficient-funds"), (409, "stream-not-live")]
    assert await coins(node, rich["token"]) == 60
    status, board = await api(node, "GET", f"/api/streams/{stream['id']}/leaderboard")
    assert [(e["user"]["id"], e["coins"]) for e in board["leaders"]] == [(rich["id"], 40)]
    await assert_invariants(node)


async def test_the_first_gift_of_the_day_over_the_limit_is_refused(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(gift_coins_per_day_max=50)
    creator, viewer = await node.signup(), await node.signup()
    stream = await node.create_stream(creator["token"])
    await buy_coins(node, viewer["token"])
    status, body = await api(node, "POST", f"/api/streams/{stream['id']}/gifts", viewer["token"],
                             {"gift_id": "heart", "count": 11, "idempotency_key": key()})  # 55 coins
    assert status == 429 and body["rule"] == "gift_coins_per_day_max"
    assert await coins(node, viewer["token"]) == 100


async def test_a_batch_the_database_refuses_is_retried_gift_by_gift(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(gift_batch_workers=1)
    creator, viewer = await node.signup(), await node.signup()
    stream = await node.create_stream(creator["token"])
    await buy_coins(node, viewer["token"])
    shop = commerce_of(node)
    rose = shop.catalogue.gifts["rose"]
    creator_share, platform_share = shop.catalogue.rate.split(rose.coins)
    good = GiftOrder(external_id="", sender_id=viewer["id"], sender_name="v", stream_id=stream["id"],
                     creator_id=creator["id"], gift=rose, count=1, coins=rose.coins, creator_diamonds=creator_share,
                     platform_diamonds=platform_share, details={"gift_id": "rose", "count": 1, "coins": 1})
    orders = [replace(good, external_id=f"gift:{viewer['id']}:{key()}") for _ in range(4)]
    # PostgreSQL's jsonb cannot hold a NUL character: this gift fails the whole batch's statement.
    orders[2] = replace(orders[2], details={"note": "\x00"})
    results = await asyncio.gather(*[shop.gift_batches.post(o) for o in orders], return_exceptions=True)
    assert isinstance(results[2], asyncpg.PostgresError)
    assert [r.outcome for i, r in enumerate(results) if i != 2] == ["ok", "ok", "ok"]  # type: ignore[union-attr]
    assert await coins(node, viewer["token"]) == 97
    await assert_invariants(node)


@pytest.mark.parametrize("seed", [secrets.randbits(32)])
async def test_concurrent_batches_on_two_nodes_add_up(node_factory, seed: int) -> None:  # type: ignore[no-untyped-def]
    """Random gifts from many viewers to a few streams through two nodes at once: no deadlock, no gift lost, and
    every balance, the leaderboards and the journal agree. The seed is in the test id to replay a failure."""
    rng = random.Random(seed)
    a = await node_factory(gift_batch_max=8, leaderboard_entries_max=20)
    b = await node_factory(gift_batch_max=8)
    creators = [await a.signup() for _ in range(3)]
    streams = [(await a.create_stream(c["token"]))["id"] for c in creators]
    viewers = [await rng.choice([a, b]).signup() for _ in range(12)]
    await asyncio.gather(*[buy_coins(a, v["token"]) for v in viewers])
    plan = [(rng.choice([a, b]), v, rng.choice(streams), rng.choice(["rose", "heart"]), rng.randint(1, 2))
            for v in viewers for _ in range(8)]  # at most 80 coins each: every gift can be paid for
    rng.shuffle(plan)
    results = await asyncio.gather(*[
        api(node, "POST", f"/api/streams/{stream}/gifts", v["token"],
            {"gift_id": gift, "count": count, "idempotency_key": key()})
        for node, v, stream, gift, count in plan
    ])
    assert [s for s, _ in results] == [200] * len(plan), [b for s, b in results if s != 200][:3]
    spent = {v["id"]: 0 for v in viewers}
    by_stream = {s: 0 for s in streams}
    for (_, v, stream, _, _), (_, sent) in zip(plan, results, strict=True):
        spent[v["id"]] += sent["coins"]
        by_stream[stream] += sent["coins"]
    for v in viewers:
        assert await coins(b, v["token"]) == 100 - spent[v["id"]]
    for stream in streams:
        _, board = await api(a, "GET", f"/api/streams/{stream}/leaderboard")
        assert sum(e["coins"] for e in board["leaders"]) == by_stream[stream]
    assert _batches(a)[1] + _batches(b)[1] >= len(plan)
    await assert_invariants(a)


async def test_a_full_gift_queue_refuses_with_503_naming_the_setting(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(gift_batch_workers=1, gift_queue_max=1)
    creator, viewer = await node.signup(), await node.signup()
    stream = await node.create_stream(creator["token"])
    await buy_coins(node, viewer["token"])
    shop = commerce_of(node)
    await shop.creator_of(stream["id"])
    sender = await node.node.accounts.get(viewer["id"])
    results = await asyncio.gather(*[_outcome(gifts.send_gift(shop, sender, stream["id"], "rose", 1, key()))
                                     for _ in range(3)])
    assert [r for r in results if not isinstance(r, dict)] == [(503, "gifts-busy")] * 2
    assert await coins(node, viewer["token"]) == 99  # only the queued gift was committed
