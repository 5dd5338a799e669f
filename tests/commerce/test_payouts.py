"""Creator earnings: held for the hold window by the node's clock, then cashed out above a minimum; a failed
payout goes back into the wallet."""

from __future__ import annotations

from money import api, assert_invariants, buy_coins, commerce_of, key

from livecore.clock import ManualClock


async def test_earnings_are_held_then_paid_out_and_a_failed_payout_is_reversed(node_factory) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock()
    node = await node_factory(clock=clock, earnings_hold_s=3600, payout_cents_min=500)
    creator = await node.signup()
    stream = await node.create_stream(creator["token"])
    viewer = await node.signup()
    await buy_coins(node, viewer["token"], "coins_5000")
    status, _ = await api(node, "POST", f"/api/streams/{stream['id']}/gifts", viewer["token"],
                          {"gift_id": "crown", "count": 4, "idempotency_key": key()})  # 2000 coins
    assert status == 200
    _, wallet = await api(node, "GET", "/api/wallet", creator["token"])
    assert wallet["earnings"]["held_diamonds"] == 2000 and wallet["earnings"]["withdrawable_diamonds"] == 0
    status, body = await api(node, "POST", "/api/payouts", creator["token"],
                             {"amount_cents": 600, "idempotency_key": key()})
    assert status == 402 and body["type"] == "livecore:insufficient-earnings"
    clock.advance(3601)
    _, wallet = await api(node, "GET", "/api/wallet", creator["token"])
    assert wallet["earnings"]["withdrawable_diamonds"] == 2000 and wallet["earnings"]["withdrawable_cents"] == 1000
    status, body = await api(node, "POST", "/api/payouts", creator["token"],
                             {"amount_cents": 100, "idempotency_key": key()})
    assert status == 400 and body["rule"] == "payout_cents_min"
    request = {"amount_cents": 500, "idempotency_key": key()}
    status, paid = await api(node, "POST", "/api/payouts", creator["token"], request)
    assert status == 201 and paid["state"] == "paid" and paid["diamonds"] == 1000
    status, again = await api(node, "POST", "/api/payouts", creator["token"], request)
    assert again == paid
    commerce_of(node).payouts.failing.add(creator["id"])  # type: ignore[attr-defined]
    status, failed = await api(node, "POST", "/api/payouts", creator["token"],
                               {"amount_cents": 500, "idempotency_key": key()})
    assert status == 201 and failed["state"] == "failed" and failed["failure"]
    _, wallet = await api(node, "GET", "/api/wallet", creator["token"])
    assert wallet["earnings"]["withdrawable_diamonds"] == 1000 and wallet["earnings"]["payout_pending_cents"] == 0
    _, listed = await api(node, "GET", "/api/payouts", creator["token"])
    assert [p["state"] for p in listed["payouts"]] == ["failed", "paid"]
    minor = await node.signup(birth_date="2012-01-01")
    status, body = await api(node, "POST", "/api/payouts", minor["token"],
                             {"amount_cents": 600, "idempotency_key": key()})
    assert status == 403 and body["type"] == "livecore:rule-adults-only"
    await assert_invariants(node)
