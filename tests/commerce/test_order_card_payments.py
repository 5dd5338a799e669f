"""Paying a pending order with a saved card (POST /api/orders/{id}/pay) against the local payment provider and the
real print-on-demand simulator: it pays once, through the order's own PaymentIntent and the signed webhook; a
retry with the same key charges nothing more; a declined card leaves the order pending and payable; someone else's
order, an order not pending, or no saved card get a problem naming it. The ledger's invariants hold throughout."""

from __future__ import annotations

from typing import Any

from money import api, assert_invariants, commerce_of, key
from podsim import PodSim
from shop import get, order, postings, product

from commerce.providers import AUTHENTICATION_CARD, DECLINED_OFF_SESSION_CARD, SUCCEEDING_CARD


async def _shop(node_factory, podsim: PodSim):  # type: ignore[no-untyped-def]
    node = await node_factory(fulfilment_url=podsim.url, fulfilment_webhook_secret=podsim.secret)
    creator, buyer = await node.signup(), await node.signup()
    made = await product(node, creator["token"])
    return node, buyer, made


async def _save(node, token: str, card: str = SUCCEEDING_CARD) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    status, method = await api(node, "POST", "/api/payment-methods", token, {"card_number": card})
    assert status == 201, method
    return method


async def _pay(node, token: str, order_id: int, **body: Any) -> tuple[int, dict[str, Any]]:  # type: ignore
    return await api(node, "POST", f"/api/orders/{order_id}/pay", token, {"idempotency_key": key(), **body})


async def test_a_saved_card_pays_the_order_once_through_its_own_payment(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, buyer, made = await _shop(node_factory, podsim)
    await _save(node, buyer["token"])
    placed = await order(node, buyer["token"], made["id"])
    paying = {"payment_method": "saved", "idempotency_key": key()}
    status, paid = await api(node, "POST", f"/api/orders/{placed['id']}/pay", buyer["token"], paying)
    assert status == 200, paid
    assert paid["state"] == "paid" and [h["state"] for h in paid["history"]][:2] == ["pending", "paid"]
    assert paid["payment"]["payment_id"] == placed["payment"]["payment_id"], "no second PaymentIntent"
    assert await postings(node, placed["id"]) == {"order_paid": 1}
    await assert_invariants(node)

    status, again = await api(node, "POST", f"/api/orders/{placed['id']}/pay", buyer["token"], paying)
    assert status == 200 and again["id"] == placed["id"] and again["state"] in ("paid", "in_production"), again
    assert await postings(node, placed["id"]) == {"order_paid": 1}, "a retry with the same key charges nothing"
    status, problem = await _pay(node, buyer["token"], placed["id"])
    assert status == 409 and problem["type"] == "livecore:order-not-pending", problem
    assert await postings(node, placed["id"]) == {"order_paid": 1}
    await assert_invariants(node)


async def test_a_declined_saved_card_leaves_the_order_pending_and_payable_again(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, buyer, made = await _shop(node_factory, podsim)
    declining = await _save(node, buyer["token"], DECLINED_OFF_SESSION_CARD)
    placed = await order(node, buyer["token"], made["id"])
    paying = {"payment_method": declining["id"], "idempotency_key": key()}
    for _ in range(2):  # the retry answers the same refusal
        status, problem = await api(node, "POST", f"/api/orders/{placed['id']}/pay", buyer["token"], paying)
        assert status == 402 and problem["type"] == "livecore:card-declined", problem
        assert "declined" in problem["detail"] and problem["reason"], problem
    found = await get(node, buyer["token"], placed["id"])
    assert found["state"] == "pending" and found["payment"]["pay_url"] and found["failure"] is None
    assert await postings(node, placed["id"]) == {}
    await assert_invariants(node)

    asking = await _save(node, buyer["token"], AUTHENTICATION_CARD)
    status, problem = await _pay(node, buyer["token"], placed["id"], payment_method=asking["id"])
    assert status == 402 and problem["type"] == "livecore:payment-requires-action", problem
    assert (await get(node, buyer["token"], placed["id"]))["state"] == "pending"

    good = await _save(node, buyer["token"])
    status, paid = await _pay(node, buyer["token"], placed["id"], payment_method=good["id"])
    assert status == 200 and paid["state"] == "paid", paid
    assert await postings(node, placed["id"]) == {"order_paid": 1}
    await assert_invariants(node)


async def test_paying_what_is_not_yours_not_pending_or_without_a_saved_card_is_refused(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    node, buyer, made = await _shop(node_factory, podsim)
    placed = await order(node, buyer["token"], made["id"])
    status, problem = await _pay(node, buyer["token"], placed["id"])
    assert status == 409 and problem["type"] == "livecore:payment-method-not-found", problem

    other = await node.signup()
    theirs = await _save(node, other["token"])
    status, problem = await _pay(node, other["token"], placed["id"])
    assert status == 404 and problem["type"] == "livecore:order-not-found", problem
    await _save(node, buyer["token"])
    status, problem = await _pay(node, buyer["token"], placed["id"], payment_method=theirs["id"])
    assert status == 409 and problem["type"] == "livecore:payment-method-not-found", problem
    status, problem = await api(node, "POST", f"/api/orders/{placed['id']}/pay", buyer["token"],
                                {"payment_method": "saved"})
    assert status == 400 and problem["type"] == "livecore:idempotency-key-required", problem

    status, cancelled = await api(node, "POST", f"/api/orders/{placed['id']}/cancel", buyer["token"])
    assert status == 200 and cancelled["state"] == "cancelled", cancelled
    status, problem = await _pay(node, buyer["token"], placed["id"])
    assert status == 409 and problem["type"] == "livecore:order-not-pending" and problem["state"] == "cancelled"
    assert await postings(node, placed["id"]) == {}
    await assert_invariants(node)


async def test_an_attempt_whose_node_died_mid_call_blocks_only_until_the_answer_wait(
        node_factory, podsim: PodSim) -> None:  # type: ignore[no-untyped-def]
    """A row left `confirming` (the node died between asking the provider and recording its answer) makes other
    attempts wait while it may still be answered, and is given up after `order_card_answer_wait_s`: a new key then
    pays the order once, and the lost attempt's key says its outcome is unknown."""
    node, buyer, made = await _shop(node_factory, podsim)
    method = await _save(node, buyer["token"])
    placed = await order(node, buyer["token"], made["id"])
    pool, now_ms = commerce_of(node).node.pool, commerce_of(node).node.clock.now_ms()
    wait_ms = commerce_of(node).node.settings.order_card_answer_wait_s * 1000
    lost = key()
    await pool.execute(
        "INSERT INTO order_card_payments (order_id, idempotency_key, payment_method_id, state, created_ms)"
        " VALUES ($1, $2, $3, 'confirming', $4)", placed["id"], lost, method["id"], now_ms - wait_ms + 60_000)

    status, problem = await _pay(node, buyer["token"], placed["id"], payment_method="saved")
    assert status == 409 and problem["type"] == "livecore:payment-in-progress", problem

    await pool.execute("UPDATE order_card_payments SET created_ms = $3 WHERE order_id = $1 AND idempotency_key = $2",
                       placed["id"], lost, now_ms - wait_ms - 1)
    status, paid = await _pay(node, buyer["token"], placed["id"], payment_method="saved")
    assert status == 200 and paid["state"] in ("paid", "in_production"), paid
    status, problem = await api(node, "POST", f"/api/orders/{placed['id']}/pay", buyer["token"],
                                {"payment_method": "saved", "idempotency_key": lost})
    assert status == 409 and problem["type"] == "livecore:payment-outcome-unknown", problem
    assert (await postings(node, placed["id"]))["order_paid"] == 1
    await assert_invariants(node)
