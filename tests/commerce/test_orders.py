"""Orders at a fixed price against the real print-on-demand simulator (a child process on a manual clock): the
whole flow to delivery with the margin credited once, callbacks duplicated, reordered and forged, returns,
cancellations, failures, declined payments, and bad addresses; the ledger's invariants hold at every step."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from money import api, assert_invariants, event, intent, key, signed_event
from podsim import TO_DELIVERED_S, TO_PRODUCTION_S, TO_SHIPPED_S, PodSim
from shop import (
    DE_ADDRESS,
    GB_ADDRESS,
    PRICE_CENTS,
    US_ADDRESS,
    VARIANT,
    get,
    order,
    pay,
    postings,
    product,
    provider_order_id,
    withdrawable_diamonds,
)
from standardwebhooks.webhooks import Webhook

from commerce.providers import DECLINED_CARD

BASE_COST, FEE = 1295, PRICE_CENTS * 10 // 100 + 30
MARGIN = PRICE_CENTS - BASE_COST - FEE
DIAMONDS_PER_CENT = 2


async def _shop(node_factory, podsim: PodSim, **settings: Any):  # type: ignore[no-untyped-def]
    node = await node_factory(fulfilment_url=podsim.url, fulfilment_webhook_secret=podsim.secret, **settings)
    creator, buyer = await node.signup(), await node.signup()
    made = await product(node, creator["token"])
    return node, creator, buyer, made


def _states(found: dict[str, Any]) -> list[str]:
    return [h["state"] for h in found["history"]]


async def test_an_order_is_paid_made_shipped_and_delivered_and_the_margin_is_credited_once(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, creator, buyer, made = await _shop(node_factory, podsim)
    status, quote = await api(node, "POST", "/api/shipping/quote", None, {
        "product_id": made["id"], "variant_id": VARIANT, "quantity": 2, "address": US_ADDRESS})
    assert status == 200, quote
    assert quote["shipping_cents"] == 475 + 225 and quote["address"]["subdivision"] == "US-CA"

    placed = await order(node, buyer["token"], made["id"], quantity=2)
    assert placed["items_cents"] == 2 * PRICE_CENTS and placed["shipping_cents"] == 700
    assert placed["total_cents"] == 2 * PRICE_CENTS + 700 and placed["payment"]["pay_url"]
    assert await postings(node, placed["id"]) == {}, "nothing is paid before the payment webhook"
    await assert_invariants(node)

    paid = await pay(node, buyer["token"], placed["id"])
    assert paid["state"] == "paid" and await postings(node, placed["id"]) == {"order_paid": 1}
    assert (await podsim.call("GET", f"/v1/orders/{await provider_order_id(node, placed['id'])}"))[0] == 200
    await assert_invariants(node)
    earned_before = await withdrawable_diamonds(node, creator["id"])
    status, sales = await api(node, "GET", "/api/sales", creator["token"])
    assert status == 200 and sales["margin_held_cents"] == 2 * MARGIN
    assert sales["sales"][0]["order_id"] == placed["id"] and not sales["sales"][0]["margin_released"]

    await podsim.advance(TO_PRODUCTION_S)
    assert (await get(node, buyer["token"], placed["id"]))["state"] == "in_production"
    assert await withdrawable_diamonds(node, creator["id"]) == earned_before
    await assert_invariants(node)

    await podsim.advance(TO_SHIPPED_S)
    shipped = await get(node, buyer["token"], placed["id"])
    assert shipped["state"] == "shipped" and shipped["tracking"]["number"]
    assert await withdrawable_diamonds(node, creator["id"]) == earned_before + 2 * MARGIN * DIAMONDS_PER_CENT
    await assert_invariants(node)

    await podsim.advance(TO_DELIVERED_S)
    delivered = await get(node, buyer["token"], placed["id"])
    assert delivered["state"] == "delivered"
    assert _states(delivered) == ["pending", "paid", "paid", "in_production", "shipped", "delivered"]
    assert await postings(node, placed["id"]) == {"order_paid": 1, "order_margin_released": 1}
    assert await withdrawable_diamonds(node, creator["id"]) == earned_before + 2 * MARGIN * DIAMONDS_PER_CENT
    status, sales = await api(node, "GET", "/api/sales", creator["token"])
    assert sales["margin_held_cents"] == 0 and sales["margin_released_cents"] == 2 * MARGIN
    status, listed = await api(node, "GET", "/api/orders", buyer["token"])
    assert status == 200 and [o["id"] for o in listed["orders"]] == [placed["id"]]
    await assert_invariants(node)


async def test_duplicated_reordered_and_forged_callbacks_change_nothing(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, creator, buyer, made = await _shop(node_factory, podsim)
    placed = await order(node, buyer["token"], made["id"])
    await pay(node, buyer["token"], placed["id"])
    ref = await provider_order_id(node, placed["id"])
    await podsim.flush_callbacks()  # the confirmation's callback, sent in the background, is not held back
    await podsim.pause_callbacks(node.url, paused=True)
    await podsim.advance(TO_PRODUCTION_S + TO_SHIPPED_S + TO_DELIVERED_S)
    callbacks = [c for c in await podsim.callbacks(ref) if not c["delivered"]]
    assert [c["type"] for c in callbacks] == ["order.in_production", "order.shipped", "order.delivered"]
    earned_before = await withdrawable_diamonds(node, creator["id"])

    async def deliver(body: str, headers: dict[str, str]) -> tuple[int, Any]:
        return await api(node, "POST", "/api/fulfilment/webhook", data=body.encode(), headers=headers)

    delivered = callbacks[2]
    forged = Webhook("whsec_" + "Zm9yZ2VkLXNlY3JldC1mb3JnZWQtc2VjcmV0").sign(
        delivered["id"], dt.datetime.now(tz=dt.UTC), delivered["body"])
    stale_at = dt.datetime.now(tz=dt.UTC) - dt.timedelta(minutes=10)
    stale = Webhook(podsim.secret).sign(delivered["id"], stale_at, delivered["body"])
    tampered = delivered["body"].replace('"delivered"', '"returned"')
    bad = [(delivered["body"], {**delivered["headers"], "webhook-signature": forged}),
           (delivered["body"], {**delivered["headers"], "webhook-signature": stale,
                                "webhook-timestamp": str(int(stale_at.timestamp()))}),
           (tampered, delivered["headers"]),
           (delivered["body"], {k: v for k, v in delivered["headers"].items() if k != "webhook-signature"}),
           (delivered["body"], {**delivered["headers"], "webhook-signature": "garbage"})]
    for body, headers in bad:
        status, problem = await deliver(body, headers)
        assert status == 400 and problem["type"] == "livecore:bad-signature", problem
    assert (await get(node, buyer["token"], placed["id"]))["state"] == "paid"
    await assert_invariants(node)

    status, answer = await deliver(delivered["body"], delivered["headers"])  # the newest arrives first
    assert status == 200 and answer["outcome"] == "delivered", answer
    assert await withdrawable_diamonds(node, creator["id"]) == earned_before + MARGIN * DIAMONDS_PER_CENT
    for callback in [callbacks[1], callbacks[0], delivered, callbacks[1]]:  # older ones and duplicates
        status, answer = await deliver(callback["body"], callback["headers"])
        assert status == 200 and answer["outcome"] in ("stale", "duplicate"), answer
        await assert_invariants(node)
    found = await get(node, buyer["token"], placed["id"])
    assert found["state"] == "delivered" and found["tracking"]["number"]
    assert await postings(node, placed["id"]) == {"order_paid": 1, "order_margin_released": 1}
    assert await withdrawable_diamonds(node, creator["id"]) == earned_before + MARGIN * DIAMONDS_PER_CENT


async def test_a_return_takes_the_margin_back_and_refunds_the_buyer_once(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, creator, buyer, made = await _shop(node_factory, podsim)
    placed = await order(node, buyer["token"], made["id"])
    await pay(node, buyer["token"], placed["id"])
    ref = await provider_order_id(node, placed["id"])
    earned_before = await withdrawable_diamonds(node, creator["id"])
    await podsim.advance(TO_PRODUCTION_S + TO_SHIPPED_S + TO_DELIVERED_S)
    assert await withdrawable_diamonds(node, creator["id"]) == earned_before + MARGIN * DIAMONDS_PER_CENT

    await podsim.happen(ref, "return")
    returned = await get(node, buyer["token"], placed["id"])
    assert returned["state"] == "returned" and returned["refunded_cents"] == placed["total_cents"]
    assert await withdrawable_diamonds(node, creator["id"]) == earned_before
    assert await postings(node, placed["id"]) == {"order_paid": 1, "order_margin_released": 1, "order_reversal": 1}
    status, sales = await api(node, "GET", "/api/sales", creator["token"])
    assert (sales["margin_held_cents"], sales["margin_released_cents"]) == (0, 0)
    assert sales["sales"][0]["refunded_cents"] == placed["total_cents"]
    sent = await node.node.pool.fetchval("SELECT refund_sent_cents FROM orders WHERE id = $1", placed["id"])
    assert sent == placed["total_cents"]
    await assert_invariants(node)

    for callback in await podsim.callbacks(ref):  # every callback again: nothing moves twice
        status, answer = await api(node, "POST", "/api/fulfilment/webhook", data=callback["body"].encode(),
                                   headers=callback["headers"])
        assert status == 200 and answer["outcome"] == "duplicate", answer
    assert await postings(node, placed["id"]) == {"order_paid": 1, "order_margin_released": 1, "order_reversal": 1}
    await assert_invariants(node)


async def test_a_failed_or_cancelled_order_gives_everything_back(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, creator, buyer, made = await _shop(node_factory, podsim)
    earned_before = await withdrawable_diamonds(node, creator["id"])
    failing = await order(node, buyer["token"], made["id"])
    await pay(node, buyer["token"], failing["id"])
    await podsim.happen(await provider_order_id(node, failing["id"]), "fail")
    failed = await get(node, buyer["token"], failing["id"])
    assert failed["state"] == "failed" and failed["refunded_cents"] == failed["total_cents"] and failed["failure"]
    await assert_invariants(node)

    cancelling = await order(node, buyer["token"], made["id"])
    await pay(node, buyer["token"], cancelling["id"])
    status, cancelled = await api(node, "POST", f"/api/orders/{cancelling['id']}/cancel", buyer["token"])
    assert status == 200 and cancelled["state"] == "cancelled", cancelled
    assert cancelled["refunded_cents"] == cancelled["total_cents"]
    await podsim.advance(TO_PRODUCTION_S + TO_SHIPPED_S)  # the provider's callback of the cancel is stale here
    assert (await get(node, buyer["token"], cancelling["id"]))["state"] == "cancelled"

    unpaid = await order(node, buyer["token"], made["id"])
    status, dropped = await api(node, "POST", f"/api/orders/{unpaid['id']}/cancel", buyer["token"])
    assert status == 200 and dropped["state"] == "cancelled" and dropped["refunded_cents"] == 0

    shipped = await order(node, buyer["token"], made["id"])
    await pay(node, buyer["token"], shipped["id"])
    await podsim.advance(TO_PRODUCTION_S + TO_SHIPPED_S)
    status, problem = await api(node, "POST", f"/api/orders/{shipped['id']}/cancel", buyer["token"])
    assert status == 409 and problem["type"] == "livecore:order-not-cancellable"
    for done in (failing, cancelling, unpaid):
        kinds = await postings(node, done["id"])
        assert kinds in ({}, {"order_paid": 1, "order_reversal": 1}), kinds
    assert await withdrawable_diamonds(node, creator["id"]) == earned_before + MARGIN * DIAMONDS_PER_CENT
    await assert_invariants(node)


async def test_a_forged_or_declined_payment_moves_no_money(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, _, buyer, made = await _shop(node_factory, podsim)
    placed = await order(node, buyer["token"], made["id"])
    forged = event("payment_intent.succeeded", intent(placed["payment"]["payment_id"], placed["total_cents"]))
    payload, header = signed_event(forged, "whsec_not_the_providers", node.node.clock.now_ms() // 1000)
    status, problem = await api(node, "POST", "/api/payments/webhook", data=payload,
                                headers={"Stripe-Signature": header})
    assert status == 400 and problem["type"] == "livecore:bad-signature"
    assert (await get(node, buyer["token"], placed["id"]))["state"] == "pending"
    declined = await pay(node, buyer["token"], placed["id"], DECLINED_CARD)
    assert declined["state"] == "failed" and declined["failure"] == "the payment was declined"
    assert await postings(node, placed["id"]) == {}
    assert await node.node.pool.fetchval("SELECT provider_order_id FROM orders WHERE id = $1", placed["id"]) is None
    await assert_invariants(node)


async def test_a_retried_order_is_the_same_order(node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, _, buyer, made = await _shop(node_factory, podsim)
    body = {"items": [{"product_id": made["id"], "variant_id": VARIANT, "quantity": 1}],
            "shipping_address": GB_ADDRESS, "idempotency_key": key()}
    status, first = await api(node, "POST", "/api/orders", buyer["token"], body)
    assert status == 201, first
    assert first["shipping_cents"] == 1199 and first["shipping_address"]["country"] == "GB"
    status, again = await api(node, "POST", "/api/orders", buyer["token"], body)
    assert status == 200 and again["id"] == first["id"] and again["payment"] == first["payment"]


async def test_orders_and_sales_come_a_page_at_a_time_and_the_last_page_says_so(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, creator, buyer, made = await _shop(node_factory, podsim, orders_listed_max=2)
    placed = [await order(node, buyer["token"], made["id"]) for _ in range(3)]
    for one in placed:
        await pay(node, buyer["token"], one["id"])
    ids = [one["id"] for one in reversed(placed)]
    for path, listed, id_of in (("/api/orders", "orders", "id"), ("/api/sales", "sales", "order_id")):
        token = buyer["token"] if listed == "orders" else creator["token"]
        status, first = await api(node, "GET", path, token)
        assert status == 200 and [o[id_of] for o in first[listed]] == ids[:2] and first["next_before"] == ids[1]
        status, last = await api(node, "GET", f"{path}?before={first['next_before']}", token)
        assert status == 200 and [o[id_of] for o in last[listed]] == ids[2:] and last["next_before"] is None


async def test_addresses_that_fail_their_countrys_checks_get_a_problem_and_change_nothing(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, _, buyer, made = await _shop(node_factory, podsim)
    bad = [
        ({**US_ADDRESS, "subdivision": None}, "address.subdivision"),  # a US address needs its state
        ({**US_ADDRESS, "subdivision": "ZZ"}, "address.subdivision"),
        ({**US_ADDRESS, "postcode": "9021"}, "address.postcode"),
        ({**US_ADDRESS, "subdivision": "NY"}, "address.postcode"),  # 90210 is not a New York ZIP code
        ({**GB_ADDRESS, "postcode": "12345"}, "address.postcode"),
        ({**GB_ADDRESS, "postcode": None}, "address.postcode"),
        ({**DE_ADDRESS, "postcode": "1011"}, "address.postcode"),
        ({**DE_ADDRESS, "subdivision": "CA"}, "address.subdivision"),
        ({**DE_ADDRESS, "country": "XX"}, "address.country"),
        ({**DE_ADDRESS, "country": "Atlantis"}, "address.country"),
    ]
    assert await api(node, "GET", "/api/shipping-address", buyer["token"]) == (204, None)  # none saved yet
    status, saved = await api(node, "PUT", "/api/shipping-address", buyer["token"], GB_ADDRESS)
    assert status == 200, saved
    before = await node.node.pool.fetchval("SELECT count(*) FROM orders")
    journal = await node.node.pool.fetchval("SELECT count(*) FROM ledger_transactions")
    for address, field in bad:
        status, problem = await api(node, "PUT", "/api/shipping-address", buyer["token"], address)
        assert status == 422 and problem["type"] == "livecore:invalid-address" and problem["field"] == field, problem
        for path, body in (("/api/orders", {"items": [{"product_id": made["id"], "variant_id": VARIANT}],
                                            "shipping_address": address, "idempotency_key": key()}),
                           ("/api/shipping/quote", {"variant_id": VARIANT, "address": address})):
            status, problem = await api(node, "POST", path, buyer["token"], body)
            assert status == 422, (address, problem)
            assert problem["type"] == "livecore:invalid-address" and problem["field"] == field, problem
    status, problem = await api(node, "POST", "/api/orders", buyer["token"], {
        "items": [{"product_id": made["id"], "variant_id": VARIANT}], "shipping_address": {"country": "US"},
        "idempotency_key": key()})
    assert status == 400 and problem["type"] == "livecore:invalid-field"
    status, problem = await api(node, "POST", "/api/orders", buyer["token"], {
        "items": [{"product_id": made["id"], "variant_id": VARIANT, "quantity": 11}],
        "shipping_address": US_ADDRESS, "idempotency_key": key()})
    assert status == 400 and problem["rule"] == "order_quantity_max", problem
    assert await node.node.pool.fetchval("SELECT count(*) FROM orders") == before
    assert await node.node.pool.fetchval("SELECT count(*) FROM ledger_transactions") == journal
    assert await api(node, "GET", "/api/shipping-address", buyer["token"]) == (200, saved), "the saved one stays"

    for good in (DE_ADDRESS, {**DE_ADDRESS, "subdivision": "BE"}, GB_ADDRESS, {**US_ADDRESS, "country": "USA"}):
        status, quote = await api(node, "POST", "/api/shipping/quote", None, {"variant_id": VARIANT,
                                                                              "address": good})
        assert status == 200, (good, quote)


async def test_the_simulator_keeps_its_orders_across_a_restart(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, _, buyer, made = await _shop(node_factory, podsim)
    placed = await order(node, buyer["token"], made["id"])
    await pay(node, buyer["token"], placed["id"])
    ref = await provider_order_id(node, placed["id"])
    podsim.stop()
    podsim.start()
    status, kept = await podsim.call("GET", f"/v1/orders/{ref}")
    assert status == 200 and kept["external_id"] == f"livecore-order-{placed['id']}" and kept["status"] == "pending"
    await podsim.advance(TO_PRODUCTION_S)  # its schedule survived too
    assert (await get(node, buyer["token"], placed["id"]))["state"] == "in_production"
    assert json.loads((await podsim.callbacks(ref))[-1]["body"])["type"] == "order.in_production"


async def test_a_return_after_the_margin_was_cashed_out_records_the_shortfall(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, creator, buyer, made = await _shop(node_factory, podsim, payout_cents_min=1)
    placed = await order(node, buyer["token"], made["id"])
    await pay(node, buyer["token"], placed["id"])
    ref = await provider_order_id(node, placed["id"])
    await podsim.advance(TO_PRODUCTION_S + TO_SHIPPED_S)
    status, payout = await api(node, "POST", "/api/payouts", creator["token"],
                               {"amount_cents": MARGIN, "idempotency_key": key()})
    assert status == 201 and payout["state"] == "paid", payout
    assert await withdrawable_diamonds(node, creator["id"]) == 0

    await podsim.happen(ref, "return")
    returned = await get(node, buyer["token"], placed["id"])
    assert returned["state"] == "returned" and returned["refunded_cents"] == placed["total_cents"]
    assert await node.node.pool.fetchval("SELECT shortfall_diamonds FROM orders WHERE id = $1",
                                         placed["id"]) == MARGIN * DIAMONDS_PER_CENT
    assert await withdrawable_diamonds(node, creator["id"]) == 0
    await assert_invariants(node)
