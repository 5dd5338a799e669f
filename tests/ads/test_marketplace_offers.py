"""Offers through the real HTTP API: an advertiser's offer to a listed creator, accepted (the price leaves the
advertiser's coins into escrow), delivered with the creator's ready video (escrow pays the creator's earnings less
the fee, once) and labelled as a paid partnership on feed cards; declined and cancelled offers give the escrow back;
each party may take only their own steps, and retries answer the offer as it is."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import pytest
from livenode import RunningNode
from marketplace_people import advertiser, api, balance, buy_coins, grant, listed_creator, ready_videos

from commerce import invariants
from livecore.clock import ManualClock

FEE_PERCENT = 10
MARKET = {"marketplace_followers_min": 3, "marketplace_recent_videos_min": 1, "marketplace_group_size_min": 2,
          "marketplace_fee_percent": FEE_PERCENT, "account_cache_ms": 0,
          "token_ttl_s": 30 * 86400}


@pytest.fixture
async def market(node_factory: Any) -> RunningNode:
    return await node_factory(clock=ManualClock(), **MARKET)


async def offer(node: RunningNode, token: str, creator_id: int, price_cents: int = 300, **extra: Any) -> dict:
    body = {"creator_id": creator_id, "brief": "show our sneakers", "price_cents": price_cents,
            "due_date": (node.node.today() + dt.timedelta(days=7)).isoformat(),
            "idempotency_key": secrets.token_hex(8), **extra}
    status, made = await api(node, "POST", "/api/offers", token, body)
    assert status == 201, made
    return made


async def assert_sound(node: RunningNode) -> None:
    broken = await invariants.violations(node.node.pool)
    assert not broken, broken


async def test_accepted_offer_is_escrowed_then_paid_once_on_delivery_and_labelled(market: RunningNode) -> None:
    pool = market.node.pool
    creator = await listed_creator(market, followers=3)
    brand = await advertiser(market)
    await buy_coins(market, brand["token"], "coins_500")
    made = await offer(market, brand["token"], creator["id"], price_cents=300)
    assert made["state"] == "offered" and made["escrow"] is None
    assert await balance(pool, brand["id"], "coins") == 500

    # The advertiser cannot accept for the creator; the creator accepts twice (a retry): money moves once.
    status, refused = await api(market, "POST", f"/api/offers/{made['id']}/accept", brand["token"])
    assert status == 403 and refused["type"] == "livecore:not-your-step", refused
    for _ in range(2):
        status, accepted = await api(market, "POST", f"/api/offers/{made['id']}/accept", creator["token"])
        assert status == 200 and accepted["state"] == "accepted", accepted
    assert accepted["escrow"] == {"coins": 300, "diamonds": 600, "fee_percent": FEE_PERCENT}
    assert await balance(pool, brand["id"], "coins") == 200
    assert await balance(pool, brand["id"], "offer_escrow") == 600
    await assert_sound(market)

    # Only the creator's own ready video delivers it.
    stranger = await market.signup()
    (foreign,) = await ready_videos(pool, stranger["id"], [(1, 0, 0)])
    status, refused = await api(market, "POST", f"/api/offers/{made['id']}/deliver", creator["token"],
                                {"video_id": foreign})
    assert status == 404 and refused["type"] == "livecore:video-not-found", refused
    (video_id,) = await ready_videos(pool, creator["id"], [(5, 1, 0)])
    for _ in range(2):
        status, delivered = await api(market, "POST", f"/api/offers/{made['id']}/deliver", creator["token"],
                                      {"video_id": video_id})
        assert status == 200 and delivered["state"] == "delivered", delivered
    assert delivered["creator_diamonds"] == 600 - 600 * FEE_PERCENT // 100
    assert await balance(pool, creator["id"], "earnings_withdrawable") == 540
    assert await balance(pool, brand["id"], "offer_escrow") == 0
    status, refused = await api(market, "POST", f"/api/offers/{made['id']}/cancel", brand["token"])
    assert status == 409 and refused["type"] == "livecore:offer-not-open", refused
    await assert_sound(market)

    # A follower's Following feed shows the video with its label.
    fan = await market.signup()
    status, _ = await api(market, "POST", f"/api/users/{creator['id']}/follow", fan["token"])
    assert status in (200, 204), _
    status, page = await api(market, "GET", "/api/feed/following?limit=50", fan["token"])
    assert status == 200, page
    card = next(item for item in page["items"] if item["kind"] == "video" and item["video"]["id"] == video_id)
    assert card["labels"] == [{"kind": "paid-partnership", "text": f"Paid partnership with {brand['display_name']}",
                               "sponsor": {"id": brand["id"], "display_name": brand["display_name"]}}]
    others = [item for item in page["items"] if item["kind"] == "video" and item["video"]["id"] != video_id]
    assert others and all(item["labels"] == [] for item in others)


async def test_declined_and_overdue_cancelled_offers_give_the_escrow_back(market: RunningNode) -> None:
    pool = market.node.pool
    clock = market.node.clock
    assert isinstance(clock, ManualClock)
    creator = await listed_creator(market, followers=3)
    brand = await advertiser(market)
    await buy_coins(market, brand["token"], "coins_1000")

    backed_out = await offer(market, brand["token"], creator["id"], price_cents=400)
    status, _ = await api(market, "POST", f"/api/offers/{backed_out['id']}/accept", creator["token"])
    assert status == 200 and await balance(pool, brand["id"], "coins") == 600
    status, declined = await api(market, "POST", f"/api/offers/{backed_out['id']}/decline", creator["token"])
    assert status == 200 and declined["state"] == "declined", declined
    assert await balance(pool, brand["id"], "coins") == 1000

    late = await offer(market, brand["token"], creator["id"], price_cents=700)
    status, _ = await api(market, "POST", f"/api/offers/{late['id']}/accept", creator["token"])
    assert status == 200 and await balance(pool, brand["id"], "coins") == 300
    status, refused = await api(market, "POST", f"/api/offers/{late['id']}/cancel", brand["token"])
    assert status == 409 and refused["type"] == "livecore:offer-not-overdue", refused
    clock.advance(8 * 86400)
    for _ in range(2):
        status, cancelled = await api(market, "POST", f"/api/offers/{late['id']}/cancel", brand["token"])
        assert status == 200 and cancelled["state"] == "cancelled", cancelled
    assert await balance(pool, brand["id"], "coins") == 1000
    assert await balance(pool, brand["id"], "offer_escrow") == 0
    await assert_sound(market)


async def test_an_offer_the_advertiser_cannot_fund_stays_offered(market: RunningNode) -> None:
    creator = await listed_creator(market, followers=3)
    brand = await advertiser(market)
    await buy_coins(market, brand["token"], "coins_100")
    made = await offer(market, brand["token"], creator["id"], price_cents=250)
    status, refused = await api(market, "POST", f"/api/offers/{made['id']}/accept", creator["token"])
    assert status == 409 and refused["type"] == "livecore:offer-not-funded" and refused["coins"] == 250, refused
    status, still = await api(market, "GET", f"/api/offers/{made['id']}", creator["token"])
    assert status == 200 and still["state"] == "offered", still
    assert await balance(market.node.pool, brand["id"], "coins") == 100
    await assert_sound(market)


async def test_who_may_make_offers_and_retries_make_one(market: RunningNode) -> None:
    creator = await listed_creator(market, followers=3)
    plain = await market.signup()
    body = {"creator_id": creator["id"], "brief": "b", "price_cents": 100, "due_date": "2099-01-01",
            "idempotency_key": "k1"}
    status, refused = await api(market, "POST", "/api/offers", plain["token"], body)
    assert status == 403 and refused["type"] == "livecore:not-an-advertiser", refused
    young = await market.signup(birth_date="2012-01-01")
    await grant(market.node.pool, young["id"], "advertiser")
    status, refused = await api(market, "POST", "/api/offers", young["token"], body)
    assert status == 403 and refused["type"] == "livecore:rule-adults-only", refused
    brand = await advertiser(market)
    status, first = await api(market, "POST", "/api/offers", brand["token"], body)
    assert status == 201, first
    status, again = await api(market, "POST", "/api/offers", brand["token"], body)
    assert status == 200 and again["id"] == first["id"], again
    status, unlisted = await api(market, "POST", "/api/offers", brand["token"],
                                 {**body, "creator_id": plain["id"], "idempotency_key": "k2"})
    assert status == 404 and unlisted["type"] == "livecore:creator-not-listed", unlisted
    status, sent = await api(market, "GET", "/api/offers?role=advertiser", brand["token"])
    assert status == 200 and [o["id"] for o in sent["items"]] == [first["id"]], sent
    status, inbox = await api(market, "GET", "/api/offers?role=creator", creator["token"])
    assert status == 200 and first["id"] in [o["id"] for o in inbox["items"]], inbox
    status, hidden = await api(market, "GET", f"/api/offers/{first['id']}", plain["token"])
    assert status == 404, hidden
