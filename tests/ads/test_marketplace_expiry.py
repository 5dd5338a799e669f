"""Offers past their delivery deadline (`offer_expire_after_days` after the due date) expire by the sweep: an
accepted one's escrow goes back to the advertiser exactly once, and it can no longer be delivered; a delivery
racing the expiry (on a node whose date is a day behind the sweeping one) ends one way or the other, never both, and
every money invariant holds."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from typing import Any

from livenode import NodeFactory, RunningNode
from marketplace_people import advertiser, api, balance, buy_coins, listed_creator, ready_videos

from ads import invariants as ad_invariants
from ads.marketplace import MARKETPLACE
from commerce import invariants
from livecore.clock import ManualClock

MARKET = {"marketplace_followers_min": 3, "marketplace_recent_videos_min": 1, "marketplace_group_size_min": 2,
          "marketplace_fee_percent": 10, "account_cache_ms": 0, "token_ttl_s": 60 * 86400,
          "offer_expiry_sweep_s": 3600}  # the tests run the sweep themselves
DUE_DAYS = 7
DAY_S = 86400


async def accepted_offer(node: RunningNode, creator: dict[str, Any], brand: dict[str, Any], accept: bool = True,
                         price_cents: int = 100) -> dict[str, Any]:
    body = {"creator_id": creator["id"], "brief": "wear it on stage", "price_cents": price_cents,
            "due_date": (node.node.today() + dt.timedelta(days=DUE_DAYS)).isoformat(),
            "idempotency_key": secrets.token_hex(8)}
    status, made = await api(node, "POST", "/api/offers", brand["token"], body)
    assert status == 201, made
    if not accept:
        return made
    status, accepted = await api(node, "POST", f"/api/offers/{made['id']}/accept", creator["token"])
    assert status == 200 and accepted["state"] == "accepted", accepted
    return accepted


async def postings(node: RunningNode, offer_id: int) -> list[str]:
    rows = await node.node.pool.fetch("SELECT kind FROM ledger_transactions WHERE details->>'ref' = $1 ORDER BY id",
                                      f"offer:{offer_id}")
    return [r["kind"] for r in rows]


async def sound(node: RunningNode) -> None:
    assert await invariants.violations(node.node.pool) == []
    assert await ad_invariants.violations(node.node.pool) == []


async def test_an_offer_not_delivered_by_its_deadline_expires_and_its_escrow_comes_back_once(
        node_factory: NodeFactory) -> None:
    node = await node_factory(clock=ManualClock(), **MARKET)
    clock, market, pool = node.node.clock, node.app[MARKETPLACE], node.node.pool
    assert isinstance(clock, ManualClock)
    creator, brand = await listed_creator(node, followers=3), await advertiser(node)
    await buy_coins(node, brand["token"], "coins_500")
    held = await accepted_offer(node, creator, brand, price_cents=300)
    never_accepted = await accepted_offer(node, creator, brand, accept=False)
    assert await balance(pool, brand["id"], "coins") == 200

    clock.advance((DUE_DAYS + node.node.settings.offer_expire_after_days) * DAY_S)  # the deadline's last day
    await market.expire_offers()
    status, still = await api(node, "GET", f"/api/offers/{held['id']}", brand["token"])
    assert status == 200 and still["state"] == "accepted", still

    clock.advance(DAY_S)
    await market.expire_offers()
    await market.expire_offers()  # a second sweep (or another node's) changes nothing
    for offer in (held, never_accepted):
        status, expired = await api(node, "GET", f"/api/offers/{offer['id']}", brand["token"])
        assert status == 200 and expired["state"] == "expired" and expired["settled_ms"], expired
    assert await postings(node, held["id"]) == ["escrow_held", "escrow_returned"]
    assert await postings(node, never_accepted["id"]) == []
    assert await balance(pool, brand["id"], "coins") == 500
    assert await balance(pool, brand["id"], "offer_escrow") == 0

    (video_id,) = await ready_videos(pool, creator["id"], [(3, 1, 0)])
    status, refused = await api(node, "POST", f"/api/offers/{held['id']}/deliver", creator["token"],
                                {"video_id": video_id})
    assert (status, refused["type"], refused["state"]) == (409, "livecore:offer-not-open", "expired"), refused
    status, refused = await api(node, "POST", f"/api/offers/{held['id']}/cancel", brand["token"])
    assert status == 409 and refused["type"] == "livecore:offer-not-open", refused
    await sound(node)


async def test_a_delivery_past_the_deadline_is_refused_before_the_sweep_comes(node_factory: NodeFactory) -> None:
    node = await node_factory(clock=ManualClock(), **MARKET)
    clock, pool = node.node.clock, node.node.pool
    assert isinstance(clock, ManualClock)
    creator, brand = await listed_creator(node, followers=3), await advertiser(node)
    await buy_coins(node, brand["token"], "coins_500")
    held = await accepted_offer(node, creator, brand)
    clock.advance((DUE_DAYS + node.node.settings.offer_expire_after_days + 1) * DAY_S)
    (video_id,) = await ready_videos(pool, creator["id"], [(3, 1, 0)])
    status, refused = await api(node, "POST", f"/api/offers/{held['id']}/deliver", creator["token"],
                                {"video_id": video_id})
    assert (status, refused["type"]) == (409, "livecore:offer-expired"), refused
    assert await postings(node, held["id"]) == ["escrow_held"]  # still held: the sweep gives it back
    await node.app[MARKETPLACE].expire_offers()
    assert await postings(node, held["id"]) == ["escrow_held", "escrow_returned"]
    await sound(node)


async def test_a_late_delivery_racing_the_expiry_moves_money_once(node_factory: NodeFactory) -> None:
    creators_node = await node_factory(clock=ManualClock(), **MARKET)
    creator, brand = await listed_creator(creators_node, followers=3), await advertiser(creators_node)
    await buy_coins(creators_node, brand["token"], "coins_5000")
    offers = [await accepted_offer(creators_node, creator, brand) for _ in range(6)]
    videos = await ready_videos(creators_node.node.pool, creator["id"], [(3, 1, 0)] * len(offers))
    days = DUE_DAYS + creators_node.node.settings.offer_expire_after_days
    creators_clock = creators_node.node.clock
    assert isinstance(creators_clock, ManualClock)
    creators_clock.advance(days * DAY_S)  # the creator's node: the deadline's last day, delivery allowed
    sweepers_clock = ManualClock(creators_clock.now_ms() + DAY_S * 1000)  # the sweeping node: a day later
    sweeper = await node_factory(clock=sweepers_clock, **MARKET)

    async def deliver(offer: dict[str, Any], video_id: int) -> int:
        status, _ = await api(creators_node, "POST", f"/api/offers/{offer['id']}/deliver", creator["token"],
                              {"video_id": video_id})
        return status

    # The sweep expires in id order, the creator delivers from the newest: they meet somewhere in between.
    statuses = await asyncio.gather(sweeper.app[MARKETPLACE].expire_offers(),
                                    *(deliver(o, v) for o, v in reversed(list(zip(offers, videos, strict=True)))))
    assert set(statuses[1:]) <= {200, 409}
    outcomes = []
    for offer in offers:
        status, now = await api(creators_node, "GET", f"/api/offers/{offer['id']}", brand["token"])
        assert status == 200
        outcomes.append(now["state"])
        assert await postings(creators_node, offer["id"]) == (
            ["escrow_held", "escrow_released"] if now["state"] == "delivered" else ["escrow_held", "escrow_returned"])
    assert set(outcomes) <= {"delivered", "expired"}
    pool = creators_node.node.pool
    delivered = outcomes.count("delivered")
    assert await balance(pool, brand["id"], "coins") == 5000 - 100 * delivered
    assert await balance(pool, creator["id"], "earnings_withdrawable") == delivered * 180
    assert await balance(pool, brand["id"], "offer_escrow") == 0
    await sound(creators_node)
