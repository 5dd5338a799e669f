"""The purchase flow through the `stripe` SDK against localstripe (a stateful fake Stripe, out of process on
loopback): PaymentIntent, card confirmation by the client, and localstripe's own signed webhook credits coins;
saving a card with a SetupIntent; an auction's off-session charges and an order's refund."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import stripe
from lots import open_auction, room_with_product
from money import api, assert_invariants, coins, commerce_of, key
from podsim import TO_PRODUCTION_S, TO_SHIPPED_S
from shop import US_ADDRESS
from stripeserver import run_localstripe

from commerce.auctions import auctions as auction_domain
from commerce.orders import winners
from livecore.clock import ManualClock

WEBHOOK_SECRET = "whsec_localstripe_test"
_SERVE = "import sys; from aiohttp import web; from localstripe.server import app; " \
         "web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=None)"
CREDIT_S_MAX = 20.0


@pytest.fixture(scope="module")
def localstripe_url() -> Iterator[str]:
    yield from run_localstripe(_SERVE)


async def test_buying_coins_through_stripe_payment_intents(node_factory, localstripe_url, http) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(stripe_secret_key="sk_test_livecore", stripe_api_base=localstripe_url,
                              stripe_webhook_secrets=WEBHOOK_SECRET)
    async with http.post(f"{localstripe_url}/_config/webhooks/livecore",
                         data={"url": f"{node.url}/api/payments/webhook", "secret": WEBHOOK_SECRET}) as r:
        assert r.status == 200, await r.text()
    viewer = await node.signup()
    status, purchase = await api(node, "POST", "/api/coins/purchases", viewer["token"],
                                 {"package_id": "coins_500", "idempotency_key": key()})
    assert status == 201, purchase
    assert purchase["provider"] == "stripe" and purchase["payment_id"].startswith("pi_")
    assert purchase["client_secret"].startswith(purchase["payment_id"])

    # The client's side (what Stripe.js does in a browser), through the same SDK.
    transport = stripe.AIOHTTPClient()
    client = stripe.StripeClient("sk_test_browser", base_addresses={"api": localstripe_url}, http_client=transport)
    try:
        method = await client.v1.payment_methods.create_async({"type": "card", "card": {
            "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        await client.v1.payment_intents.update_async(purchase["payment_id"], {"payment_method": method.id})
        confirmed = await client.v1.payment_intents.confirm_async(purchase["payment_id"])
    finally:
        await transport.close_async()
    assert confirmed.status in ("succeeded", "processing")

    # localstripe delivers its signed payment_intent.succeeded event about a second later.
    deadline = time.monotonic() + CREDIT_S_MAX
    while await coins(node, viewer["token"]) != 500:
        assert time.monotonic() < deadline, "localstripe's webhook never credited the coins"
        await asyncio.sleep(0.2)
    _, view = await api(node, "GET", f"/api/coins/purchases/{purchase['id']}", viewer["token"])
    assert view["state"] == "succeeded"
    await assert_invariants(node)


async def test_saving_a_card_through_a_stripe_setup_intent(node_factory, localstripe_url) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(stripe_secret_key="sk_test_livecore", stripe_api_base=localstripe_url,
                              stripe_webhook_secrets=WEBHOOK_SECRET)
    viewer, other = await node.signup(), await node.signup()
    status, setup = await api(node, "POST", "/api/payment-methods", viewer["token"], {})
    assert status == 202 and setup["state"] == "requires_confirmation"
    assert setup["setup_intent_id"].startswith("seti_") and setup["client_secret"].startswith(setup["setup_intent_id"])
    status, early = await api(node, "POST", "/api/payment-methods", viewer["token"],
                              {"setup_intent_id": setup["setup_intent_id"]})
    assert status == 409 and early["type"] == "livecore:setup-not-complete"

    transport = stripe.AIOHTTPClient()  # the page's side (Stripe.js), through the same SDK
    client = stripe.StripeClient("sk_test_browser", base_addresses={"api": localstripe_url}, http_client=transport)
    try:
        method = await client.v1.payment_methods.create_async({"type": "card", "card": {
            "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        confirmed = await client.v1.setup_intents.confirm_async(setup["setup_intent_id"],
                                                                {"payment_method": method.id})
    finally:
        await transport.close_async()
    assert confirmed.status == "succeeded"

    status, problem = await api(node, "POST", "/api/payment-methods", other["token"],
                                {"setup_intent_id": setup["setup_intent_id"]})
    assert status == 400 and problem["type"] == "livecore:setup-not-yours"
    status, saved = await api(node, "POST", "/api/payment-methods", viewer["token"],
                              {"setup_intent_id": setup["setup_intent_id"]})
    assert status == 201 and (saved["provider"], saved["last4"]) == ("stripe", "4242")
    status, listed = await api(node, "GET", "/api/payment-methods", viewer["token"])
    assert [m["id"] for m in listed["methods"]] == [saved["id"]]
    row = await node.node.pool.fetchrow("SELECT * FROM payment_methods WHERE id = $1", saved["id"])
    assert row["method_ref"] == method.id and row["customer_ref"].startswith("cus_")
    status, problem = await api(node, "POST", "/api/payment-methods", viewer["token"],
                                {"card_number": "4242424242424242"})
    assert status == 400 and problem["type"] == "livecore:card-not-accepted"


async def _save_stripe_card(node, localstripe_url: str, token: str, number: str) -> None:  # type: ignore[no-untyped-def]
    """Save a card the way the page does: a SetupIntent confirmed by Stripe.js, then kept by the node."""
    status, setup = await api(node, "POST", "/api/payment-methods", token, {})
    assert status == 202, setup
    transport = stripe.AIOHTTPClient()
    client = stripe.StripeClient("sk_test_browser", base_addresses={"api": localstripe_url}, http_client=transport)
    try:
        method = await client.v1.payment_methods.create_async({"type": "card", "card": {
            "number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        await client.v1.setup_intents.confirm_async(setup["setup_intent_id"], {"payment_method": method.id})
    finally:
        await transport.close_async()
    status, saved = await api(node, "POST", "/api/payment-methods", token,
                              {"setup_intent_id": setup["setup_intent_id"]})
    assert status == 201, saved


async def test_a_won_lot_charged_off_session_through_stripe_and_refunded_when_it_comes_back(
        node_factory, localstripe_url, http, podsim) -> None:  # type: ignore[no-untyped-def]
    """Stripe's side of winning and paying: the winner's card (Stripe's 4000000000000341: saved, then declined
    off-session) fails, the next bidder accepts and is charged off-session, localstripe's signed webhook pays the
    order, and when the parcel comes back the refund goes through Stripe."""
    clock = ManualClock(time.time_ns() // 1_000_000)  # localstripe signs by the wall clock; the node judges by this
    node = await node_factory(clock=clock, stripe_secret_key="sk_test_livecore", stripe_api_base=localstripe_url,
                              stripe_webhook_secrets=WEBHOOK_SECRET, fulfilment_url=podsim.url,
                              fulfilment_webhook_secret=podsim.secret, auction_sweep_ms=3_600_000,
                              auction_payment_sweep_ms=3_600_000, order_sweep_s=3600)
    async with http.post(f"{localstripe_url}/_config/webhooks/livecore",
                         data={"url": f"{node.url}/api/payments/webhook", "secret": WEBHOOK_SECRET}) as r:
        assert r.status == 200, await r.text()
    room = await room_with_product(node)
    ann, bob = await node.signup(), await node.signup()
    for account, card in ((ann, "4242424242424242"), (bob, "4000000000000341")):
        await _save_stripe_card(node, localstripe_url, account["token"], card)
        status, _ = await api(node, "PUT", "/api/shipping-address", account["token"], US_ADDRESS)
        assert status == 200
    auction = await open_auction(node, room)
    for account, cents in ((ann, 2000), (bob, 2400)):
        status, placed = await api(node, "POST", f"/api/auctions/{auction['id']}/bids", account["token"],
                                   {"amount_cents": cents, "idempotency_key": key()})
        assert status == 200, placed
    clock.advance(61)
    await auction_domain.close_due(commerce_of(node).auctions)

    await winners.sweep(commerce_of(node).orders)
    status, body = await api(node, "GET", f"/api/auctions/{auction['id']}/payments")
    assert [(a["bidder_id"], a["state"]) for a in body["attempts"]] == [(bob["id"], "declined"),
                                                                        (ann["id"], "offered")], body
    status, taken = await api(node, "POST", f"/api/auctions/{auction['id']}/offer/accept", ann["token"], {})
    assert status == 200 and taken["state"] == "charging" and taken["order"]["payment"]["payment_id"], taken
    order_id = taken["order"]["id"]

    deadline = time.monotonic() + CREDIT_S_MAX  # localstripe delivers its signed event about a second later
    placed = "SELECT provider_order_id FROM orders WHERE id = $1 AND state = 'paid'"
    while (ref := await node.node.pool.fetchval(placed, order_id)) is None:  # paid, then placed with the provider
        assert time.monotonic() < deadline, "localstripe's webhook never paid the order"
        await asyncio.sleep(0.2)
    await podsim.advance(TO_PRODUCTION_S + TO_SHIPPED_S)
    await podsim.happen(ref, "return")
    status, order = await api(node, "GET", f"/api/orders/{order_id}", ann["token"])
    assert order["state"] == "returned" and order["refunded_cents"] == order["total_cents"]
    assert await node.node.pool.fetchval("SELECT refund_sent_cents FROM orders WHERE id = $1",
                                         order_id) == order["total_cents"], "the refund went through Stripe"
    await assert_invariants(node)


async def test_an_order_paid_with_a_saved_card_through_stripe(
        node_factory, localstripe_url, http, podsim) -> None:  # type: ignore[no-untyped-def]
    """The order's own PaymentIntent (made at checkout) gets the buyer's customer and is confirmed with their saved
    card; localstripe's signed webhook pays it. A card Stripe declines answers card-declined."""
    node = await node_factory(stripe_secret_key="sk_test_livecore", stripe_api_base=localstripe_url,
                              stripe_webhook_secrets=WEBHOOK_SECRET, fulfilment_url=podsim.url,
                              fulfilment_webhook_secret=podsim.secret)
    async with http.post(f"{localstripe_url}/_config/webhooks/livecore",
                         data={"url": f"{node.url}/api/payments/webhook", "secret": WEBHOOK_SECRET}) as r:
        assert r.status == 200, await r.text()
    room = await room_with_product(node)
    product_id = room.product["id"]
    buyer = await node.signup()
    await _save_stripe_card(node, localstripe_url, buyer["token"], "4242424242424242")
    status, placed = await api(node, "POST", "/api/orders", buyer["token"], {
        "items": [{"product_id": product_id, "variant_id": "tshirt-m-black", "quantity": 1}],
        "shipping_address": US_ADDRESS, "idempotency_key": key()})
    assert status == 201 and placed["payment"]["payment_id"].startswith("pi_"), placed
    paying = {"payment_method": "saved", "idempotency_key": key()}
    status, paid = await api(node, "POST", f"/api/orders/{placed['id']}/pay", buyer["token"], paying)
    assert status == 200 and paid["payment"]["payment_id"] == placed["payment"]["payment_id"], paid

    deadline = time.monotonic() + CREDIT_S_MAX  # localstripe delivers its signed event about a second later
    while (await api(node, "GET", f"/api/orders/{placed['id']}", buyer["token"]))[1]["state"] == "pending":
        assert time.monotonic() < deadline, "localstripe's webhook never paid the order"
        await asyncio.sleep(0.2)
    status, again = await api(node, "POST", f"/api/orders/{placed['id']}/pay", buyer["token"], paying)
    assert status == 200 and again["state"] != "pending", again
    rows = await node.node.pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE kind = 'order_paid' AND details->>'order_id' = $1",
        str(placed["id"]))
    assert rows == 1
    await assert_invariants(node)

    declining = await node.signup()
    await _save_stripe_card(node, localstripe_url, declining["token"], "4000000000000341")
    status, other = await api(node, "POST", "/api/orders", declining["token"], {
        "items": [{"product_id": product_id, "variant_id": "tshirt-m-black", "quantity": 1}],
        "shipping_address": US_ADDRESS, "idempotency_key": key()})
    assert status == 201, other
    status, problem = await api(node, "POST", f"/api/orders/{other['id']}/pay", declining["token"],
                                {"payment_method": "saved", "idempotency_key": key()})
    assert status == 402 and problem["type"] == "livecore:card-declined", problem
