"""The purchase flow through the `stripe` SDK against localstripe (a stateful fake Stripe, out of process on
loopback): PaymentIntent, card confirmation by the client, and localstripe's own signed webhook credits coins."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import stripe
from money import api, assert_invariants, coins, key
from stripeserver import run_localstripe

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
