"""Cash-out through Stripe Connect, with the `stripe` SDK against localstripe (out of process, on loopback), the real
database and real HTTP to the node: a creator sets up an Express-style connected account, finishes onboarding, and
cashes out by Transfer; a payout without a destination is refused; a transfer Stripe refuses, or reverses later,
comes back into the creator's withdrawable earnings; a transfer whose answer was lost is sent once on retry.

localstripe implements no part of Connect; `connect_stripe.py` adds the endpoints this flow uses to the localstripe
process these tests start (our model of Stripe, not Stripe: see there).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from livenode import RunningNode
from money import api, assert_invariants, buy_coins, commerce_of, event, key, signed_event
from stripeserver import run_localstripe

from commerce import payouts
from livecore.clock import ManualClock

WEBHOOK_SECRET = "whsec_localstripe_payouts"
PLATFORM_KEY = "sk_test_livecore_platform"
WEBHOOK_S_MAX = 20.0

_SERVE = ("import sys; sys.path[:0] = sys.argv[2:]; import connect_stripe; "
          "connect_stripe.serve_localstripe(int(sys.argv[1]))")


@pytest.fixture(scope="module")
def connect_stripe() -> Iterator[str]:
    """localstripe with the Connect endpoints, on a free loopback port; its URL."""
    here = Path(__file__).resolve().parent
    yield from run_localstripe(_SERVE, str(here), str(here.parent))


@pytest.fixture
async def sdk(connect_stripe: str) -> AsyncIterator[stripe.StripeClient]:
    """The platform's own view of Stripe (what an operator would see in the dashboard), through the same SDK."""
    transport = stripe.AIOHTTPClient()
    yield stripe.StripeClient(PLATFORM_KEY, base_addresses={"api": connect_stripe}, http_client=transport)
    await transport.close_async()


async def stripe_node(node_factory, connect_stripe: str, **overrides: Any) -> RunningNode:  # type: ignore[no-untyped-def]
    return await node_factory(stripe_secret_key=PLATFORM_KEY, stripe_api_base=connect_stripe,
                              stripe_webhook_secrets=WEBHOOK_SECRET, earnings_hold_s=0, payout_cents_min=500,
                              **overrides)


async def creator_with_earnings(node_factory) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A creator with 1,000 cents (2,000 diamonds) withdrawable, earned on a node with the local test provider that
    shares the database (a Stripe node takes card payments only from a browser)."""
    shop = await node_factory(earnings_hold_s=0)
    creator = await shop.signup()
    stream = await shop.create_stream(creator["token"])
    viewer = await shop.signup()
    await buy_coins(shop, viewer["token"], "coins_5000")
    status, body = await api(shop, "POST", f"/api/streams/{stream['id']}/gifts", viewer["token"],
                             {"gift_id": "crown", "count": 4, "idempotency_key": key()})  # 2,000 coins
    assert status == 200, body
    return creator


async def earnings(node: RunningNode, token: str) -> dict[str, Any]:
    status, wallet = await api(node, "GET", "/api/wallet", token)
    assert status == 200, wallet
    return wallet["earnings"]


async def onboarded(node: RunningNode, token: str) -> dict[str, Any]:
    """Set up the creator's connected account and fill in Stripe's onboarding; the destination afterwards."""
    status, started = await api(node, "POST", "/api/payouts/destination", token)
    assert status == 200 and started["state"] == "onboarding", started
    async with node.http.get(started["onboarding_url"], allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"] == f"{node.url}/earnings.html?payouts=ready"
    status, ready = await api(node, "GET", "/api/payouts/destination", token)
    assert status == 200 and ready["state"] == "active", ready
    return ready


async def send_stripe_events(node: RunningNode, connect_stripe: str, events: list[str]) -> None:
    async with node.http.post(f"{connect_stripe}/_config/webhooks/livecore-payouts",
                              json={"url": f"{node.url}/api/payouts/webhook", "secret": WEBHOOK_SECRET,
                                    "events": events}) as r:
        assert r.status == 200, await r.text()


async def transfers_to(sdk: stripe.StripeClient, account_id: str) -> list[Any]:
    return list((await sdk.v1.transfers.list_async({"destination": account_id, "limit": 100})).data)


async def eventually(check: Any, what: str) -> None:
    deadline = time.monotonic() + WEBHOOK_S_MAX
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


# --- Tests ---------------------------------------------------------------------------------------------------------

async def test_a_creator_sets_up_a_connected_account_and_cashes_out_by_transfer(  # type: ignore[no-untyped-def]
        node_factory, connect_stripe, sdk) -> None:
    creator = await creator_with_earnings(node_factory)
    node = await stripe_node(node_factory, connect_stripe)
    token = creator["token"]
    status, none = await api(node, "GET", "/api/payouts/destination", token)
    assert status == 200 and none["provider"] == "stripe" and none["state"] == "none" and not none["account_id"]

    status, started = await api(node, "POST", "/api/payouts/destination", token)
    assert status == 200 and started["state"] == "onboarding" and started["account_id"].startswith("acct_")
    assert started["onboarding_url"].startswith(connect_stripe) and started["onboarding_expires_at"] > time.time()
    account = await sdk.v1.accounts.retrieve_async(started["account_id"])
    assert account.controller["stripe_dashboard"]["type"] == "express" and account.type == "express"
    assert account.capabilities.to_dict() == {"transfers": "inactive"} and account.country == "US"
    assert account.metadata["livecore_creator_id"] == str(creator["id"])
    status, again = await api(node, "POST", "/api/payouts/destination", token)  # one account, a fresh link
    assert again["account_id"] == started["account_id"] and again["onboarding_url"] != started["onboarding_url"]

    status, body = await api(node, "POST", "/api/payouts", token, {"amount_cents": 500, "idempotency_key": key()})
    assert status == 409 and body["type"] == "livecore:payout-destination-not-ready", body
    assert body["state"] == "onboarding" and "external_account" in body["requirements_due"]

    ready = await onboarded(node, token)  # the second link: the first is still unused, either would do
    assert ready["account_id"] == started["account_id"] and ready["payouts_enabled"] and not ready["onboarding_url"]
    request = {"amount_cents": 500, "idempotency_key": key()}
    status, paid = await api(node, "POST", "/api/payouts", token, request)
    assert status == 201 and paid["state"] == "paid" and paid["provider"] == "stripe", paid
    transfer = await sdk.v1.transfers.retrieve_async(paid["provider_ref"])
    assert (transfer.amount, transfer.currency, transfer.destination) == (500, "usd", started["account_id"])
    assert transfer.metadata["livecore_payout"] == f"payout-{paid['id']}"
    status, repeated = await api(node, "POST", "/api/payouts", token, request)
    assert status == 201 and repeated == paid
    assert [t.id for t in await transfers_to(sdk, started["account_id"])] == [transfer.id]
    left = await earnings(node, token)
    assert left["withdrawable_diamonds"] == 1000 and left["payout_pending_cents"] == 0
    await assert_invariants(node)


async def test_a_payout_without_a_destination_is_refused_and_moves_nothing(  # type: ignore[no-untyped-def]
        node_factory, connect_stripe) -> None:
    creator = await creator_with_earnings(node_factory)
    node = await stripe_node(node_factory, connect_stripe)
    status, body = await api(node, "POST", "/api/payouts", creator["token"],
                             {"amount_cents": 500, "idempotency_key": key()})
    assert status == 409 and body["type"] == "livecore:payout-destination-missing", body
    assert "/api/payouts/destination" in body["detail"]
    kept = await earnings(node, creator["token"])
    assert kept["withdrawable_diamonds"] == 2000 and kept["payout_pending_cents"] == 0
    _, listed = await api(node, "GET", "/api/payouts", creator["token"])
    assert listed["payouts"] == []
    await assert_invariants(node)


async def test_a_transfer_stripe_refuses_is_reversed_into_withdrawable_earnings(  # type: ignore[no-untyped-def]
        node_factory, connect_stripe, sdk) -> None:
    creator = await creator_with_earnings(node_factory)
    node = await stripe_node(node_factory, connect_stripe)
    await send_stripe_events(node, connect_stripe, ["transfer.reversed"])  # the node does not hear of the rejection
    token = creator["token"]
    ready = await onboarded(node, token)
    await sdk.v1.accounts.reject_async(ready["account_id"], {"reason": "fraud"})

    status, failed = await api(node, "POST", "/api/payouts", token, {"amount_cents": 500, "idempotency_key": key()})
    assert status == 201 and failed["state"] == "failed" and "capabilities" in failed["failure"], failed
    back = await earnings(node, token)
    assert back["withdrawable_diamonds"] == 2000 and back["payout_pending_cents"] == 0
    assert await transfers_to(sdk, ready["account_id"]) == []

    status, now = await api(node, "GET", "/api/payouts/destination", token)
    assert status == 200 and now["state"] == "rejected" and now["disabled_reason"] == "rejected.fraud"
    status, body = await api(node, "POST", "/api/payouts", token, {"amount_cents": 500, "idempotency_key": key()})
    assert status == 409 and body["type"] == "livecore:payout-destination-not-ready" and body["state"] == "rejected"
    status, body = await api(node, "POST", "/api/payouts/destination", token)
    assert status == 409 and body["type"] == "livecore:payout-destination-rejected", body
    await assert_invariants(node)


async def test_a_transfer_reversed_later_comes_back_into_the_wallet(  # type: ignore[no-untyped-def]
        node_factory, connect_stripe, sdk) -> None:
    creator = await creator_with_earnings(node_factory)
    node = await stripe_node(node_factory, connect_stripe)
    await send_stripe_events(node, connect_stripe, ["transfer.reversed", "account.updated"])
    token = creator["token"]
    status, started = await api(node, "POST", "/api/payouts/destination", token)
    assert status == 200 and started["state"] == "onboarding"
    async with node.http.get(started["onboarding_url"], allow_redirects=False) as r:
        assert r.status == 302

    async def stored_state() -> str:
        return await node.node.pool.fetchval("SELECT state FROM payout_destinations WHERE creator_id = $1",
                                             creator["id"])

    async def activated() -> bool:  # from Stripe's account.updated event, before anyone reads the destination
        return await stored_state() == "active"

    await eventually(activated, "account.updated never reached the node")
    status, paid = await api(node, "POST", "/api/payouts", token, {"amount_cents": 500, "idempotency_key": key()})
    assert status == 201 and paid["state"] == "paid", paid

    async def payout() -> dict[str, Any]:
        _, listed = await api(node, "GET", "/api/payouts", token)
        return next(p for p in listed["payouts"] if p["id"] == paid["id"])

    await sdk.v1.transfers.reversals.create_async(paid["provider_ref"], {"amount": 200})

    async def partly_back() -> bool:
        return (await payout())["reversed_cents"] == 200

    await eventually(partly_back, "the partial reversal never came back")
    assert (await payout())["state"] == "paid" and (await earnings(node, token))["withdrawable_diamonds"] == 1400

    await sdk.v1.transfers.reversals.create_async(paid["provider_ref"])  # the rest

    async def all_back() -> bool:
        return (await payout())["state"] == "reversed"

    await eventually(all_back, "the full reversal never came back")
    back = await earnings(node, token)
    assert back["withdrawable_diamonds"] == 2000 and back["payout_pending_cents"] == 0

    # The same event again (Stripe retries deliveries) changes nothing.
    transfer = (await sdk.v1.transfers.retrieve_async(paid["provider_ref"])).to_dict()
    payload, header = signed_event(event("transfer.reversed", transfer), WEBHOOK_SECRET, int(time.time()))
    status, result = await api(node, "POST", "/api/payouts/webhook", data=payload,
                               headers={"Stripe-Signature": header, "Content-Type": "application/json"})
    assert status == 200 and result["outcome"] == "duplicate", result
    status, forged = await api(node, "POST", "/api/payouts/webhook", data=payload,
                               headers={"Stripe-Signature": header.replace("v1=", "v1=0"),
                                        "Content-Type": "application/json"})
    assert status == 400 and forged["type"] == "livecore:bad-signature"
    assert (await earnings(node, token))["withdrawable_diamonds"] == 2000
    await assert_invariants(node)


async def test_a_transfer_whose_answer_was_lost_stays_pending_and_is_sent_once_on_retry(  # type: ignore[no-untyped-def]
        node_factory, connect_stripe, sdk, http) -> None:
    creator = await creator_with_earnings(node_factory)
    clock = ManualClock(int(time.time() * 1000) + 1000)  # after the gifts, so they are withdrawable
    node = await stripe_node(node_factory, connect_stripe, clock=clock)
    token = creator["token"]
    ready = await onboarded(node, token)

    async def lose_transfer_answers() -> None:  # the first try and both of the SDK's retries
        async with http.post(f"{connect_stripe}/_config/connect/drop_transfer_answers", json={"count": 3}) as r:
            assert r.status == 200

    await lose_transfer_answers()
    first = {"amount_cents": 500, "idempotency_key": key()}
    status, pending = await api(node, "POST", "/api/payouts", token, first)
    assert status == 202 and pending["state"] == "pending" and not pending["provider_ref"], pending
    held = await earnings(node, token)
    assert held["withdrawable_diamonds"] == 1000 and held["payout_pending_cents"] == 500
    made = await transfers_to(sdk, ready["account_id"])
    assert len(made) == 1  # Stripe made it; the node does not know
    status, paid = await api(node, "POST", "/api/payouts", token, first)  # same key: same transfer
    assert status == 201 and paid["state"] == "paid" and paid["provider_ref"] == made[0].id, paid
    assert len(await transfers_to(sdk, ready["account_id"])) == 1

    # No client retries this one: the node's sweep sends it again after payout_retry_s, here after Stripe forgot
    # the idempotency key, so the node looks the transfer up instead of making another.
    await lose_transfer_answers()
    second = {"amount_cents": 500, "idempotency_key": key()}
    status, pending = await api(node, "POST", "/api/payouts", token, second)
    assert status == 202 and pending["state"] == "pending"
    assert await payouts.send_pending_again(commerce_of(node)) == 0  # not stuck yet: the client may still retry
    async with http.post(f"{connect_stripe}/_config/connect/expire_idempotency_keys") as r:
        assert r.status == 200
    clock.advance(25 * 3600)
    assert await payouts.send_pending_again(commerce_of(node)) == 1
    _, listed = await api(node, "GET", "/api/payouts", token)
    paid = next(p for p in listed["payouts"] if p["id"] == pending["id"])
    assert paid["state"] == "paid", paid
    made = await transfers_to(sdk, ready["account_id"])
    assert len(made) == 2 and paid["provider_ref"] in {t.id for t in made}
    done = await earnings(node, token)
    assert done["withdrawable_diamonds"] == 0 and done["payout_pending_cents"] == 0
    await assert_invariants(node)


async def test_with_the_local_provider_there_is_nothing_to_set_up(node: RunningNode) -> None:
    creator = await node.signup()
    status, found = await api(node, "GET", "/api/payouts/destination", creator["token"])
    assert status == 200 and found["provider"] == "local" and found["state"] == "active", found
    status, set_up = await api(node, "POST", "/api/payouts/destination", creator["token"])
    assert status == 200 and set_up == found
    minor = await node.signup(birth_date="2012-01-01")
    status, body = await api(node, "POST", "/api/payouts/destination", minor["token"])
    assert status == 403 and body["type"] == "livecore:rule-adults-only"
