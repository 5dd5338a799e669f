"""Buying coins: only a verified webhook credits; forged, stale, duplicate, reordered and reversing events."""

from __future__ import annotations

import time

from money import (
    api,
    assert_invariants,
    buy_coins,
    coins,
    commerce_of,
    dispute,
    event,
    intent,
    key,
    refund,
    signed_event,
)

from livecore.clock import ManualClock


async def _start_purchase(node, token: str, package_id: str = "coins_100") -> dict:  # type: ignore[no-untyped-def]
    status, purchase = await api(node, "POST", "/api/coins/purchases", token,
                                 {"package_id": package_id, "idempotency_key": key()})
    assert status == 201, purchase
    return purchase


async def _deliver(node, evt: dict, secret: str, timestamp_s: int) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    payload, header = signed_event(evt, secret, timestamp_s)
    return await api(node, "POST", "/api/payments/webhook", data=payload,
                     headers={"Stripe-Signature": header, "Content-Type": "application/json"})


async def test_packages_and_an_idempotent_purchase(node) -> None:  # type: ignore[no-untyped-def]
    _status, body = await api(node, "GET", "/api/coins/packages")
    first = body["packages"][0]
    assert (first["id"], first["coins"], first["amount_cents"]) == ("coins_100", 100, 99)
    viewer = await node.signup()
    body = {"package_id": "coins_500", "idempotency_key": key()}
    _, one = await api(node, "POST", "/api/coins/purchases", viewer["token"], body)
    _, two = await api(node, "POST", "/api/coins/purchases", viewer["token"], body)
    assert one == two and one["state"] == "created" and one["payment_id"]
    assert await coins(node, viewer["token"]) == 0  # nothing until the provider's verified event


async def test_forged_and_stale_webhooks_are_refused_and_change_nothing(node_factory) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock()
    node = await node_factory(clock=clock)
    viewer = await node.signup()
    purchase = await _start_purchase(node, viewer["token"])
    secret = (await commerce_of(node).webhook_secrets())[0]
    paid = event("payment_intent.succeeded", intent(purchase["payment_id"], 99))
    now_s = clock.now_ms() // 1000
    status, body = await _deliver(node, paid, "whsec_forged", now_s)
    assert status == 400 and body["type"] == "livecore:bad-signature"
    status, body = await _deliver(node, paid, secret, now_s - 301)
    assert status == 400 and body["type"] == "livecore:stale-signature"
    status, body = await _deliver(node, paid, secret, now_s + 301)
    assert status == 400 and body["type"] == "livecore:stale-signature"
    payload, header = signed_event(paid, secret, now_s)
    status, body = await api(node, "POST", "/api/payments/webhook", data=payload.replace(b"99", b"98"),
                             headers={"Stripe-Signature": header})
    assert status == 400
    status, body = await api(node, "POST", "/api/payments/webhook", data=payload)
    assert status == 400
    assert await coins(node, viewer["token"]) == 0
    assert await node.node.pool.fetchval("SELECT count(*) FROM payment_events WHERE event_id = $1", paid["id"]) == 0
    status, body = await _deliver(node, paid, secret, now_s - 299)
    assert status == 200 and body["outcome"] == "credited"
    assert await coins(node, viewer["token"]) == 100


async def test_duplicates_and_a_second_event_for_one_payment_credit_once(node) -> None:  # type: ignore[no-untyped-def]
    viewer = await node.signup()
    purchase = await _start_purchase(node, viewer["token"])
    secret = (await commerce_of(node).webhook_secrets())[0]
    paid = event("payment_intent.succeeded", intent(purchase["payment_id"], 99))
    outcomes = [(await _deliver(node, paid, secret, int(time.time())))[1]["outcome"] for _ in range(3)]
    assert outcomes == ["credited", "duplicate", "duplicate"]
    again = event("payment_intent.succeeded", intent(purchase["payment_id"], 99))  # same payment, new event id
    assert (await _deliver(node, again, secret, int(time.time())))[1]["outcome"] == "ignored"
    wrong_amount = await _start_purchase(node, viewer["token"])
    cheap = event("payment_intent.succeeded", intent(wrong_amount["payment_id"], 1))
    assert (await _deliver(node, cheap, secret, int(time.time())))[1]["outcome"] == "ignored"
    assert await coins(node, viewer["token"]) == 100
    await assert_invariants(node)


async def test_a_refund_before_the_success_credits_nothing(node) -> None:  # type: ignore[no-untyped-def]
    viewer = await node.signup()
    purchase = await _start_purchase(node, viewer["token"])
    secret = (await commerce_of(node).webhook_secrets())[0]
    ref = purchase["payment_id"]
    assert (await _deliver(node, event("charge.refunded", refund(ref, 99)), secret, int(time.time())))[1][
        "outcome"] == "reversed"
    assert (await _deliver(node, event("payment_intent.succeeded", intent(ref, 99)), secret, int(time.time())))[1][
        "outcome"] == "ignored"
    assert await coins(node, viewer["token"]) == 0
    _, view = await api(node, "GET", f"/api/coins/purchases/{purchase['id']}", viewer["token"])
    assert view["state"] == "reversed"
    await assert_invariants(node)


async def test_a_dispute_takes_coins_back_and_freezes_a_wallet_that_cannot_cover(node) -> None:  # type: ignore[no-untyped-def]
    creator = await node.signup()
    stream = await node.create_stream(creator["token"])
    viewer = await node.signup()
    first = await buy_coins(node, viewer["token"])
    second = await buy_coins(node, viewer["token"])
    secret = (await commerce_of(node).webhook_secrets())[0]
    status, _ = await api(node, "POST", f"/api/streams/{stream['id']}/gifts", viewer["token"],
                          {"gift_id": "crown", "count": 1, "idempotency_key": key()})
    assert status == 402  # 500 coins > 200
    status, _ = await api(node, "POST", f"/api/streams/{stream['id']}/gifts", viewer["token"],
                          {"gift_id": "bouquet", "count": 2, "idempotency_key": key()})
    assert status == 200 and await coins(node, viewer["token"]) == 2
    _, body = await _deliver(node, event("charge.refunded", refund(first["payment_id"], 99)), secret,
                             int(time.time()))
    assert body["outcome"] == "reversed"
    _, wallet = await api(node, "GET", "/api/wallet", viewer["token"])
    assert wallet["coins"] == 0 and wallet["frozen"]
    _, body = await _deliver(node, event("charge.dispute.created", dispute(second["payment_id"], 99)), secret,
                             int(time.time()))
    assert body["outcome"] == "reversed"
    status, body = await api(node, "POST", f"/api/streams/{stream['id']}/gifts", viewer["token"],
                             {"gift_id": "rose", "idempotency_key": key()})
    assert status in (402, 403)
    status, body = await api(node, "POST", "/api/coins/purchases", viewer["token"],
                             {"package_id": "coins_100", "idempotency_key": key()})
    assert status == 403 and body["type"] == "livecore:wallet-frozen"
    shortfall = await node.node.pool.fetchval(
        "SELECT sum(shortfall_coins) FROM wallet_freezes WHERE owner_id = $1", viewer["id"])
    assert shortfall == 198
    await assert_invariants(node)


async def test_an_admin_lifts_a_freeze_and_the_shortfall_stays_on_record(node) -> None:  # type: ignore[no-untyped-def]
    creator, viewer, admin = await node.signup(), await node.signup(), await node.signup()
    stream = await node.create_stream(creator["token"])
    await node.node.pool.execute("UPDATE accounts SET roles = roles || '{admin}' WHERE id = $1", admin["id"])
    paid = await buy_coins(node, viewer["token"])
    status, _ = await api(node, "POST", f"/api/streams/{stream['id']}/gifts", viewer["token"],
                          {"gift_id": "bouquet", "idempotency_key": key()})  # 99 of the 100 coins
    assert status == 200
    secret = (await commerce_of(node).webhook_secrets())[0]
    await _deliver(node, event("charge.refunded", refund(paid["payment_id"], 99)), secret, int(time.time()))
    _, wallet = await api(node, "GET", "/api/wallet", viewer["token"])
    assert wallet["frozen"] and wallet["coins"] == 0
    path = f"/api/admin/wallets/{viewer['id']}/unfreeze"
    status, body = await api(node, "POST", path, viewer["token"])
    assert status == 403 and body["type"] == "livecore:not-admin"
    status, body = await api(node, "POST", path, admin["token"])
    assert status == 200 and body == {"user_id": viewer["id"], "was_frozen": True, "shortfall_coins_resolved": 99}
    _, wallet = await api(node, "GET", "/api/wallet", viewer["token"])
    assert not wallet["frozen"]
    await buy_coins(node, viewer["token"])  # a frozen wallet could not buy
    status, body = await api(node, "POST", path, admin["token"])
    assert body["was_frozen"] is False and body["shortfall_coins_resolved"] == 0
    resolved_by = await node.node.pool.fetchval("SELECT resolved_by FROM wallet_freezes WHERE owner_id = $1",
                                                viewer["id"])
    assert resolved_by == admin["id"]
    await assert_invariants(node)


async def test_partial_refunds_take_back_their_share_of_the_coins_once(node) -> None:  # type: ignore[no-untyped-def]
    viewer = await node.signup()
    paid = await buy_coins(node, viewer["token"])  # 100 coins for 99 cents
    secret = (await commerce_of(node).webhook_secrets())[0]
    ref, now_s = paid["payment_id"], int(time.time())
    _, body = await _deliver(node, event("charge.refunded", refund(ref, 33, full=False)), secret, now_s)
    assert body["outcome"] == "reversed" and await coins(node, viewer["token"]) == 67  # a third of 100 coins
    _, view = await api(node, "GET", f"/api/coins/purchases/{paid['id']}", viewer["token"])
    assert view["state"] == "succeeded"
    _, body = await _deliver(node, event("charge.refunded", refund(ref, 33, full=False)), secret, now_s)
    assert body["outcome"] == "ignored"  # another event with the same running total: nothing more
    _, body = await _deliver(node, event("charge.refunded", refund(ref, 99)), secret, now_s)
    assert body["outcome"] == "reversed" and await coins(node, viewer["token"]) == 0
    _, view = await api(node, "GET", f"/api/coins/purchases/{paid['id']}", viewer["token"])
    assert view["state"] == "reversed"
    cents = await node.node.pool.fetch(
        "SELECT (details->>'cents_given_back')::int AS cents FROM ledger_transactions WHERE kind = 'reversal'"
        " AND actor_id = $1 ORDER BY id", viewer["id"])
    assert [r["cents"] for r in cents] == [33, 66]  # the books give back exactly what the provider did
    await assert_invariants(node)


async def test_a_partial_refund_before_the_success_is_taken_back_after_it(node) -> None:  # type: ignore[no-untyped-def]
    viewer = await node.signup()
    purchase = await _start_purchase(node, viewer["token"])
    secret = (await commerce_of(node).webhook_secrets())[0]
    ref, now_s = purchase["payment_id"], int(time.time())
    _, body = await _deliver(node, event("charge.refunded", refund(ref, 50, full=False)), secret, now_s)
    assert body["outcome"] == "reversed" and await coins(node, viewer["token"]) == 0
    _, body = await _deliver(node, event("payment_intent.succeeded", intent(ref, 99)), secret, now_s)
    assert body["outcome"] == "credited"
    assert await coins(node, viewer["token"]) == 100 - 100 * 50 // 99
    await assert_invariants(node)


async def test_secret_rotation_accepts_the_old_and_the_new_secret(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(stripe_webhook_secrets="whsec_new,whsec_old")
    viewer = await node.signup()
    for secret in ("whsec_new", "whsec_old"):
        purchase = await _start_purchase(node, viewer["token"])
        paid = event("payment_intent.succeeded", intent(purchase["payment_id"], 99))
        status, body = await _deliver(node, paid, secret, int(time.time()))
        assert status == 200 and body["outcome"] == "credited"
    assert await coins(node, viewer["token"]) == 200


async def test_the_local_test_card_page_flow_and_velocity_rule(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(purchases_per_hour_max=2)
    viewer = await node.signup()
    purchase = await _start_purchase(node, viewer["token"])
    assert purchase["pay_url"] == f"/pay.html?purchase={purchase['id']}"
    status, declined = await api(node, "POST", f"/api/payments/local/{purchase['id']}/confirm", viewer["token"],
                                 {"card_number": "4000 0000 0000 0002"})
    assert status == 200 and declined["state"] == "failed"
    await _start_purchase(node, viewer["token"])
    status, body = await api(node, "POST", "/api/coins/purchases", viewer["token"],
                             {"package_id": "coins_100", "idempotency_key": key()})
    assert status == 429 and body["type"] == "livecore:rule-purchase-velocity"
    assert body["rule"] == "purchases_per_hour_max"
