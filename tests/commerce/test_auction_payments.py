"""Winning and paying, against the real print-on-demand simulator, with the node's clock driven by the test: the
winner's saved card is charged off-session and the paid lot becomes an order that is made, shipped and delivered;
a declined charge, or a payment needing an action the winner does not complete in time, passes the lot to the next
bidder at their own highest bid; every attempt is recorded and announced in the room; the ledger holds throughout."""

from __future__ import annotations

from typing import Any

from lots import bidder, open_auction, room_with_product
from money import api, assert_invariants, commerce_of, key
from podsim import TO_DELIVERED_S, TO_PRODUCTION_S, TO_SHIPPED_S, PodSim
from roomclient import events_until
from shop import GB_ADDRESS, US_ADDRESS, postings, withdrawable_diamonds

from commerce.auctions import auctions as auction_domain
from commerce.orders import payments, winners
from commerce.providers import AUTHENTICATION_CARD, DECLINED_OFF_SESSION_CARD
from livecore.clock import ManualClock

WINDOW_S = 120
QUIET = {"auction_sweep_ms": 3_600_000, "auction_payment_sweep_ms": 3_600_000, "order_sweep_s": 3600,
         "auction_payment_window_s": WINDOW_S}  # these tests run the sweeps themselves, by the clock they drive


async def _node(node_factory, podsim: PodSim):  # type: ignore[no-untyped-def]
    clock = ManualClock()
    node = await node_factory(clock=clock, fulfilment_url=podsim.url, fulfilment_webhook_secret=podsim.secret,
                              **QUIET)
    return node, clock


async def _bidder(node, card: str | None = None, address: dict[str, Any] = US_ADDRESS) -> dict:  # type: ignore
    """A bidder with a saved card (the succeeding test card unless `card`) and a saved shipping address."""
    if card is None:
        account = await bidder(node)
    else:
        account = await node.signup()
        status, method = await api(node, "POST", "/api/payment-methods", account["token"], {"card_number": card})
        assert status == 201, method
    status, saved = await api(node, "PUT", "/api/shipping-address", account["token"], address)
    assert status == 200, saved
    return account


async def _bid(node, token: str, auction_id: int, cents: int) -> None:  # type: ignore[no-untyped-def]
    status, body = await api(node, "POST", f"/api/auctions/{auction_id}/bids", token,
                             {"amount_cents": cents, "idempotency_key": key()})
    assert status == 200, body


async def _close(node, clock: ManualClock, auction_id: int) -> None:  # type: ignore[no-untyped-def]
    clock.advance(61)
    assert auction_id in await auction_domain.close_due(commerce_of(node).auctions)


async def _attempts(node, auction_id: int) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    status, body = await api(node, "GET", f"/api/auctions/{auction_id}/payments")
    assert status == 200, body
    return body["attempts"]


def _actions(events: list[dict], action: str) -> list[dict]:
    return [e for e in events if e["type"] == "auction" and e["action"] == action]


async def test_the_winner_is_charged_and_the_lot_is_made_shipped_and_delivered(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, clock = await _node(node_factory, podsim)
    room = await room_with_product(node)
    ann, bob = await _bidder(node), await _bidder(node, address=GB_ADDRESS)
    auction = await open_auction(node, room)
    await _bid(node, ann["token"], auction["id"], 2000)
    await _bid(node, bob["token"], auction["id"], 2600)
    await _close(node, clock, auction["id"])
    earned_before = await withdrawable_diamonds(node, room.seller["id"])

    await winners.sweep(commerce_of(node).orders)  # other tests' lots on the shared database may be swept too
    attempts = await _attempts(node, auction["id"])
    assert [(a["bidder_id"], a["kind"], a["state"], a["amount_cents"]) for a in attempts] == [
        (bob["id"], "win", "paid", 2600)]
    order_id = attempts[0]["order_id"]
    status, order = await api(node, "GET", f"/api/orders/{order_id}", bob["token"])
    assert status == 200 and order["state"] == "paid" and order["source"] == "auction", order
    assert order["items"][0]["unit_price_cents"] == 2600 and order["shipping_cents"] == 1199
    assert order["total_cents"] == 2600 + 1199 and order["shipping_address"]["country"] == "GB"
    status, seen = await api(node, "GET", f"/api/auctions/{auction['id']}")
    assert seen["order_id"] == order_id
    await winners.sweep(commerce_of(node).orders)
    assert await _attempts(node, auction["id"]) == attempts, "a paid lot is not charged again"
    await assert_invariants(node)

    await podsim.advance(TO_PRODUCTION_S + TO_SHIPPED_S)
    fee = 2600 * 10 // 100 + 30
    margin = 2600 - 1295 - fee
    assert await withdrawable_diamonds(node, room.seller["id"]) == earned_before + margin * 2
    await podsim.advance(TO_DELIVERED_S)
    status, order = await api(node, "GET", f"/api/orders/{order_id}", bob["token"])
    assert order["state"] == "delivered"
    assert await postings(node, order_id) == {"order_paid": 1, "order_margin_released": 1}
    assert await withdrawable_diamonds(node, room.seller["id"]) == earned_before + margin * 2
    await assert_invariants(node)


async def test_a_declined_charge_passes_the_lot_to_the_next_bidder_at_their_own_highest_bid(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, clock = await _node(node_factory, podsim)
    room = await room_with_product(node)
    ann, carol = await _bidder(node), await _bidder(node)
    bob = await _bidder(node, DECLINED_OFF_SESSION_CARD)
    watcher = await node.ws(room.stream["id"])
    await events_until(watcher, lambda evs: any(e["type"] == "snapshot" for e in evs))
    auction = await open_auction(node, room)
    await _bid(node, ann["token"], auction["id"], 2000)
    await _bid(node, carol["token"], auction["id"], 2200)
    await _bid(node, bob["token"], auction["id"], 2600)
    await _close(node, clock, auction["id"])

    await winners.sweep(commerce_of(node).orders)
    attempts = await _attempts(node, auction["id"])
    assert [(a["bidder_id"], a["kind"], a["state"]) for a in attempts] == [
        (bob["id"], "win", "declined"), (carol["id"], "second_chance", "offered")]
    assert attempts[1]["amount_cents"] == 2200 and attempts[1]["expires_at"] == clock.now_ms() + WINDOW_S * 1000
    status, declined = await api(node, "GET", f"/api/orders/{attempts[0]['order_id']}", bob["token"])
    assert declined["state"] == "failed" and "declined" in declined["failure"]
    offered = _actions(await events_until(watcher, lambda evs: bool(_actions(evs, "offered"))), "offered")[0]
    assert offered["offer"]["bidder"]["id"] == carol["id"] and offered["offer"]["amount_cents"] == 2200

    status, problem = await api(node, "POST", f"/api/auctions/{auction['id']}/offer/accept", ann["token"], {})
    assert status == 404 and problem["type"] == "livecore:offer-not-found"
    status, taken = await api(node, "POST", f"/api/auctions/{auction['id']}/offer/accept", carol["token"], {})
    assert status == 200 and taken["state"] == "paid" and taken["order"]["state"] == "paid", taken
    assert taken["order"]["items_cents"] == 2200
    won = _actions(await events_until(watcher, lambda evs: bool(_actions(evs, "won"))), "won")[-1]
    assert won["paid_by"]["id"] == carol["id"] and won["amount_cents"] == 2200
    assert await node.node.pool.fetchval("SELECT state FROM auction_wins WHERE auction_id = $1",
                                         auction["id"]) == "paid"
    assert await postings(node, attempts[0]["order_id"]) == {}, "the declined charge moved no money"
    settled = await _attempts(node, auction["id"])
    await winners.sweep(commerce_of(node).orders)
    assert await _attempts(node, auction["id"]) == settled, "a paid lot is not offered again"
    await assert_invariants(node)


async def test_an_action_not_completed_in_the_window_moves_the_lot_on_until_nobody_is_left(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, clock = await _node(node_factory, podsim)
    room = await room_with_product(node)
    ann = await _bidder(node)
    bob = await _bidder(node, AUTHENTICATION_CARD)
    auction = await open_auction(node, room)
    await _bid(node, ann["token"], auction["id"], 2000)
    await _bid(node, bob["token"], auction["id"], 2500)
    await _close(node, clock, auction["id"])
    orders = commerce_of(node).orders

    await winners.sweep(orders)
    attempts = await _attempts(node, auction["id"])
    assert [(a["bidder_id"], a["state"]) for a in attempts] == [(bob["id"], "requires_action")]
    status, waiting = await api(node, "GET", f"/api/orders/{attempts[0]['order_id']}", bob["token"])
    assert waiting["state"] == "pending" and waiting["payment"]["client_secret"]
    clock.advance(WINDOW_S - 1)
    await winners.sweep(orders)
    assert [a["state"] for a in await _attempts(node, auction["id"])] == ["requires_action"]
    clock.advance(1)
    await winners.sweep(orders)
    attempts = await _attempts(node, auction["id"])
    assert [(a["bidder_id"], a["state"]) for a in attempts] == [(bob["id"], "expired"), (ann["id"], "offered")]
    status, lapsed = await api(node, "GET", f"/api/orders/{attempts[0]['order_id']}", bob["token"])
    assert lapsed["state"] == "cancelled"
    row = await node.node.pool.fetchrow("SELECT * FROM orders WHERE id = $1", lapsed["id"])
    await payments.deliver_local_event(commerce_of(node), "payment_intent.succeeded", row)  # bob pays too late
    status, lapsed = await api(node, "GET", f"/api/orders/{lapsed['id']}", bob["token"])
    assert lapsed["state"] == "cancelled" and lapsed["refunded_cents"] == lapsed["total_cents"]
    assert await postings(node, lapsed["id"]) == {"order_paid": 1, "order_reversal": 1}
    await assert_invariants(node)

    clock.advance(WINDOW_S)
    await winners.sweep(orders)
    attempts = await _attempts(node, auction["id"])
    assert [a["state"] for a in attempts] == ["expired", "expired"]
    assert await node.node.pool.fetchval("SELECT state FROM auction_wins WHERE auction_id = $1",
                                         auction["id"]) == "unsold"
    status, problem = await api(node, "POST", f"/api/auctions/{auction['id']}/offer/accept", ann["token"], {})
    assert status == 409 and problem["type"] == "livecore:offer-closed"
    settled = await _attempts(node, auction["id"])
    await winners.sweep(orders)
    assert await _attempts(node, auction["id"]) == settled, "an unsold lot is not offered again"
    await assert_invariants(node)
