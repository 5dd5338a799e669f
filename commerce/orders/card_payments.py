"""Paying a pending order with the buyer's saved card, on-session: the order's own PaymentIntent (made at checkout)
is confirmed with the card, never a second one. As with every payment, only the provider's verified webhook makes
the order paid; a declined card leaves it pending, to be paid again.

Each (order, idempotency key) is kept in `order_card_payments`, so a retry answers the first outcome and the
provider is asked once; one confirmation at a time per order. An attempt whose node died before recording the
provider's answer is given up after `order_card_answer_wait_s` (the intent is the order's one PaymentIntent, which
succeeds at most once, so a new attempt cannot pay twice; the webhook says what the lost one did).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import asyncpg

from commerce.orders import history
from commerce.orders.payments import deliver_local_event
from commerce.providers import PaymentProviderError
from livecore.accounts import Account
from livecore.http import Problem

if TYPE_CHECKING:
    from commerce.service import Commerce

SavedChoice = Literal["saved"] | int  # the newest saved card, or one by its id


async def pay_with_saved_card(commerce: Commerce, buyer: Account, order_id: int, choice: SavedChoice,
                              idempotency_key: str) -> asyncpg.Record:
    """Confirm the order's payment with a saved card; the order as it stands (paid once the event came)."""
    pool = commerce.node.pool
    order = await history.get_order(pool, buyer.id, order_id)
    earlier = await pool.fetchrow("SELECT * FROM order_card_payments WHERE order_id = $1 AND idempotency_key = $2",
                                  order_id, idempotency_key)
    if earlier is not None:
        return await _replay(commerce, buyer, earlier)
    _check_payable(order)
    method = await _method(pool, commerce.payments.name, buyer.id, choice)
    attempt = await _begin(commerce, order_id, idempotency_key, method["id"])
    try:
        charge = await commerce.payments.confirm_saved(order["payment_ref"], method["customer_ref"],
                                                       method["method_ref"], f"order-{order_id}-pay-{idempotency_key}")
    except PaymentProviderError as exc:  # nothing is known to have happened: the same key may try again
        await pool.execute("DELETE FROM order_card_payments WHERE order_id = $1 AND idempotency_key = $2",
                           order_id, idempotency_key)
        raise Problem(502, "payment-provider-unavailable", str(exc)) from exc
    attempt = await pool.fetchrow(
        "UPDATE order_card_payments SET state = $3, reason = $4 WHERE order_id = $1 AND idempotency_key = $2"
        " RETURNING *", order_id, idempotency_key, charge.status, charge.reason or None)
    if charge.status == "succeeded" and commerce.payments.name == "local":
        await deliver_local_event(commerce, "payment_intent.succeeded", order)
    return await _replay(commerce, buyer, attempt)


def _check_payable(order: asyncpg.Record) -> None:
    if order["state"] != "pending" or order["paid_ms"] is not None:
        raise Problem(409, "order-not-pending", f"order {order['id']} is {order['state']}; only a pending order "
                      "can be paid", state=order["state"])
    if order["payment_ref"] is None:
        raise Problem(409, "payment-not-started", "this order's payment was not started; retry the order")


async def _method(pool: asyncpg.Pool, provider: str, owner_id: int, choice: SavedChoice) -> asyncpg.Record:
    method = await pool.fetchrow(
        "SELECT * FROM payment_methods WHERE owner_id = $1 AND provider = $2 AND ($3::bigint IS NULL OR id = $3)"
        " ORDER BY id DESC LIMIT 1", owner_id, provider, None if choice == "saved" else choice)
    if method is None:
        which = "a saved card" if choice == "saved" else f"a saved payment method {choice}"
        raise Problem(409, "payment-method-not-found", f"you have no {which.removeprefix('a ')} here; save one "
                      "first (POST /api/payment-methods) or pay on the card page", field="payment_method")
    return method


async def _begin(commerce: Commerce, order_id: int, idempotency_key: str, method_id: int) -> asyncpg.Record:
    now_ms = commerce.node.clock.now_ms()
    wait_ms = commerce.node.settings.order_card_answer_wait_s * 1000
    try:
        async with commerce.node.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE order_card_payments SET state = 'abandoned', reason = 'no answer was recorded'"
                " WHERE order_id = $1 AND state = 'confirming' AND created_ms <= $2", order_id, now_ms - wait_ms)
            return await conn.fetchrow(
                "INSERT INTO order_card_payments (order_id, idempotency_key, payment_method_id, state, created_ms)"
                " VALUES ($1, $2, $3, 'confirming', $4) RETURNING *", order_id, idempotency_key, method_id, now_ms)
    except asyncpg.UniqueViolationError as exc:
        raise Problem(409, "payment-in-progress", f"order {order_id} is being paid already; look at it again "
                      "in a moment") from exc


async def _replay(commerce: Commerce, buyer: Account, attempt: asyncpg.Record) -> asyncpg.Record:
    """The order after this attempt, or the attempt's refusal as a problem (the same one every time)."""
    state = attempt["state"]
    if state == "declined":
        raise Problem(402, "card-declined", f"the saved card was declined: {attempt['reason']}; the order is "
                      "still pending, pay it with another card", reason=attempt["reason"])
    if state == "requires_action":
        raise Problem(402, "payment-requires-action", f"{attempt['reason']}; pay it on the card page",
                      reason=attempt["reason"])
    if state == "abandoned":
        raise Problem(409, "payment-outcome-unknown", f"this attempt to pay order {attempt['order_id']} got no "
                      "recorded answer; look at the order, and if it is still pending pay it with a new key")
    if state == "confirming":
        raise Problem(409, "payment-in-progress", f"order {attempt['order_id']} is being paid already; look at "
                      "it again in a moment")
    return await history.get_order(commerce.node.pool, buyer.id, attempt["order_id"])
