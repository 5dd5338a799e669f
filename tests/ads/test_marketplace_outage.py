"""PostgreSQL out from under offers: stopped while an offer is accepted and delivered (on a PostgreSQL of the test's
own), and the answer to an accept's and a delivery's COMMIT lost on the wire. Each refused request answers 503
`livecore:unavailable` naming the database, with Retry-After, never 500; the same request again after the outage
takes effect once: the escrow is taken once and paid once, and every money invariant holds. An expiry sweep cut off
by both (a lost COMMIT answer, then the server stopped) finishes when the server is back: each escrow given back
once."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from typing import Any

from commitcut import commit_cutter, lost_commit_then_database_stopped
from livenode import NodeFactory, RunningNode, Servers
from marketplace_people import advertiser, api, balance, buy_coins, listed_creator, ready_videos

from ads import invariants as ad_invariants
from ads.marketplace import MARKETPLACE
from commerce import invariants
from livecore.clock import ManualClock
from livecore.embedded import EmbeddedPostgres

MARKET = {"marketplace_followers_min": 3, "marketplace_recent_videos_min": 1, "marketplace_group_size_min": 2,
          "marketplace_fee_percent": 10, "account_cache_ms": 0}
PRICE_CENTS = 300


async def _offer_ready_to_accept(node: RunningNode) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]:
    creator = await listed_creator(node, followers=3)
    brand = await advertiser(node)
    await buy_coins(node, brand["token"], "coins_500")
    body = {"creator_id": creator["id"], "brief": "unbox it", "price_cents": PRICE_CENTS,
            "due_date": (node.node.today() + dt.timedelta(days=5)).isoformat(), "idempotency_key": secrets.token_hex(8)}
    status, offer = await api(node, "POST", "/api/offers", brand["token"], body)
    assert status == 201, offer
    (video_id,) = await ready_videos(node.node.pool, creator["id"], [(1, 0, 0)])
    return creator, brand, offer, video_id


def _assert_unavailable(status: int, answer: Any) -> None:
    assert status == 503, answer
    assert answer["type"] == "livecore:unavailable" and answer["unavailable"] == "database", answer


async def _paid_once(node: RunningNode, creator: dict[str, Any], brand: dict[str, Any], offer_id: int) -> None:
    pool = node.node.pool
    assert await balance(pool, brand["id"], "coins") == 500 - PRICE_CENTS
    assert await balance(pool, brand["id"], "offer_escrow") == 0
    assert await balance(pool, creator["id"], "earnings_withdrawable") == 2 * PRICE_CENTS * 90 // 100
    kinds = await pool.fetch("SELECT kind FROM ledger_transactions WHERE details->>'ref' = $1 ORDER BY id",
                             f"offer:{offer_id}")
    assert [r["kind"] for r in kinds] == ["escrow_held", "escrow_released"]
    broken = await invariants.violations(pool)
    assert not broken, broken


async def test_postgres_stopped_during_accept_and_deliver_answers_503_and_moves_money_once(
    own_postgres: EmbeddedPostgres, node_factory: NodeFactory, servers: Servers
) -> None:
    node = await node_factory(on=Servers(own_postgres.url, servers.redis_url, servers.directory), **MARKET)
    creator, brand, offer, video_id = await _offer_ready_to_accept(node)
    accept, deliver = f"/api/offers/{offer['id']}/accept", f"/api/offers/{offer['id']}/deliver"

    await asyncio.to_thread(own_postgres.stop)
    async with node.http.post(node.url + accept, headers={"Authorization": f"Bearer {creator['token']}"}) as reply:
        _assert_unavailable(reply.status, await reply.json(content_type=None))
        assert int(reply.headers["Retry-After"]) >= 1
    await asyncio.to_thread(own_postgres.start)
    for _ in range(2):  # the client's retry, then one more: accepted once
        status, accepted = await api(node, "POST", accept, creator["token"])
        assert status == 200 and accepted["state"] == "accepted", accepted
    assert await balance(node.node.pool, brand["id"], "coins") == 500 - PRICE_CENTS

    await asyncio.to_thread(own_postgres.stop)
    status, answer = await api(node, "POST", deliver, creator["token"], {"video_id": video_id})
    _assert_unavailable(status, answer)
    await asyncio.to_thread(own_postgres.start)
    for _ in range(2):
        status, delivered = await api(node, "POST", deliver, creator["token"], {"video_id": video_id})
        assert status == 200 and delivered["state"] == "delivered", delivered
    await _paid_once(node, creator, brand, offer["id"])


async def test_accept_and_deliver_whose_commit_answers_were_lost_take_effect_once(
    node_factory: NodeFactory, servers: Servers
) -> None:
    async with commit_cutter(servers.database_url) as cutter:
        node = await node_factory(on=Servers(cutter.url, servers.redis_url, servers.directory), **MARKET)
        creator, brand, offer, video_id = await _offer_ready_to_accept(node)
        for step, marker, body in (("accept", f"escrow_held:offer:{offer['id']}", None),
                                   ("deliver", f"escrow_released:offer:{offer['id']}", {"video_id": video_id})):
            cuts = cutter.cuts
            cutter.arm(marker)
            status, lost = await api(node, "POST", f"/api/offers/{offer['id']}/{step}", creator["token"], body)
            assert cutter.cuts == cuts + 1  # the step's transaction was committed and its answer lost
            _assert_unavailable(status, lost)
            status, again = await api(node, "POST", f"/api/offers/{offer['id']}/{step}", creator["token"], body)
            assert status == 200 and again["state"] == {"accept": "accepted", "deliver": "delivered"}[step], again
        await _paid_once(node, creator, brand, offer["id"])


async def test_an_expiry_sweep_cut_off_by_postgres_finishes_when_it_is_back_and_returns_each_escrow_once(
    own_postgres: EmbeddedPostgres, node_factory: NodeFactory, servers: Servers
) -> None:
    async with commit_cutter(own_postgres.url) as cutter:
        node = await node_factory(clock=ManualClock(), on=Servers(cutter.url, servers.redis_url, servers.directory),
                                  offer_expiry_sweep_s=3600, token_ttl_s=60 * 86400, **MARKET)
        clock, market, pool = node.node.clock, node.app[MARKETPLACE], node.node.pool
        assert isinstance(clock, ManualClock)
        creator, brand, first, _ = await _offer_ready_to_accept(node)
        offers = [first]
        for _ in range(2):
            status, made = await api(node, "POST", "/api/offers", brand["token"], {
                "creator_id": creator["id"], "brief": "again", "price_cents": 50, "due_date": first["due_date"],
                "idempotency_key": secrets.token_hex(8)})
            assert status == 201, made
            offers.append(made)
        for offer in offers:
            status, accepted = await api(node, "POST", f"/api/offers/{offer['id']}/accept", creator["token"])
            assert status == 200 and accepted["state"] == "accepted", accepted
        assert await balance(pool, brand["id"], "coins") == 500 - PRICE_CENTS - 100
        clock.advance((5 + node.node.settings.offer_expire_after_days + 1) * 86400)  # past every deadline

        async with lost_commit_then_database_stopped(cutter, f"escrow_returned:offer:{first['id']}",
                                                     market.expire_offers, own_postgres):
            pass

        assert await market.expire_offers() == 2  # the first expired with the commit whose answer was lost
        assert await market.expire_offers() == 0
        for offer in offers:
            status, expired = await api(node, "GET", f"/api/offers/{offer['id']}", brand["token"])
            assert status == 200 and expired["state"] == "expired", expired
            kinds = await pool.fetch("SELECT kind FROM ledger_transactions WHERE details->>'ref' = $1 ORDER BY id",
                                     f"offer:{offer['id']}")
            assert [r["kind"] for r in kinds] == ["escrow_held", "escrow_returned"]
        assert await balance(pool, brand["id"], "coins") == 500
        assert await balance(pool, brand["id"], "offer_escrow") == 0
        assert await invariants.violations(pool) == []
        assert await ad_invariants.violations(pool) == []
