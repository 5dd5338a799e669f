"""An order's payment: the payment provider's verified events (routed here by the payment webhook when the
PaymentIntent is an order's), the local test provider's card page, and the refunds the platform owes buyers.

Only `payment_intent.succeeded` makes an order paid, once; a refund or dispute reverses the share of the cents the
provider gave back, once per running total. Events are applied in the transaction that records them as seen.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import asyncpg

from commerce import webhooks
from commerce.orders import history, winners
from commerce.orders.money import give_back, post_paid
from commerce.providers import SUCCEEDING_CARD, PaymentProviderError, local_intent_event
from livecore.accounts import Account
from livecore.http import Problem

if TYPE_CHECKING:
    from commerce.service import Commerce

log = logging.getLogger("livecore.commerce.orders")


async def order_for(conn: asyncpg.Connection | asyncpg.Pool, provider: str, obj: dict[str, Any],
                    lock: bool = True) -> asyncpg.Record | None:
    """The order a provider object (a PaymentIntent, or a charge or dispute of one) is about."""
    intent_id = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
    if not isinstance(intent_id, str):
        return None
    return await conn.fetchrow(
        "SELECT * FROM orders WHERE payment_provider = $1 AND payment_ref = $2" + (" FOR UPDATE" if lock else ""),
        provider, intent_id)


async def apply_event(commerce: Commerce, conn: asyncpg.Connection, order: asyncpg.Record, obj: dict[str, Any],
                      event: dict[str, Any]) -> str:
    """Apply one verified payment event to an order; what happened."""
    kind = event["type"]
    if kind == "payment_intent.succeeded":
        return await _succeeded(commerce, conn, order, obj, event)
    if kind == "payment_intent.payment_failed":
        return await _failed(commerce, conn, order)
    if kind in ("charge.refunded", "charge.dispute.created"):
        return await _given_back(commerce, conn, order, obj, kind)
    return "ignored"


async def _succeeded(commerce: Commerce, conn: asyncpg.Connection, order: asyncpg.Record, intent: dict[str, Any],
                     event: dict[str, Any]) -> str:
    if order["paid_ms"] is not None:
        return "ignored"
    if intent.get("amount") != order["total_cents"] or str(intent.get("currency")).lower() != order["currency"]:
        log.error("event %s pays %s %s for order %d of %d %s; not taking it", event["id"], intent.get("amount"),
                  intent.get("currency"), order["id"], order["total_cents"], order["currency"])
        return "ignored"
    now_ms = commerce.node.clock.now_ms()
    await post_paid(commerce, conn, order, {"event_id": event["id"], "payment_ref": order["payment_ref"]})
    if order["state"] == "cancelled" or (order["source"] == "auction" and not await winners.awaits(conn, order)):
        # Cancelled before the money came, or a lot that has gone to someone else: it all goes back at once.
        order = await conn.fetchrow("UPDATE orders SET paid_ms = $2 WHERE id = $1 RETURNING *", order["id"], now_ms)
        await history.record(conn, order["id"], order["state"], "payment", "paid too late: refunded", now_ms)
        await give_back(commerce, conn, order, order["total_cents"], "paid too late", refund_by_us=True)
        return "order-refunded"
    order = await history.move(conn, order, "paid", "payment", "the payment went through", now_ms,
                               paid_ms=now_ms, failure=None)
    if order["source"] == "auction":
        await winners.order_settled(conn, order, None, now_ms)
    return "order-paid"


async def _failed(commerce: Commerce, conn: asyncpg.Connection, order: asyncpg.Record) -> str:
    if order["state"] != "pending":
        return "ignored"
    reason = "the payment was declined"
    now_ms = commerce.node.clock.now_ms()
    await history.move(conn, order, "failed", "payment", reason, now_ms, failure=reason)
    if order["source"] == "auction":
        await winners.order_settled(conn, order, reason, now_ms)
    return "order-payment-failed"


async def _given_back(commerce: Commerce, conn: asyncpg.Connection, order: asyncpg.Record, obj: dict[str, Any],
                      kind: str) -> str:
    if order["paid_ms"] is None:
        return "ignored"
    total, before = order["total_cents"], order["reversed_cents"]
    if kind == "charge.refunded":  # a charge carries the running total of its refunds
        given = obj.get("amount_refunded")
        given = given if isinstance(given, int) else (total if obj.get("refunded") is True else 0)
    else:  # a dispute takes its own amount on top of what was refunded
        disputed = obj.get("amount")
        given = before + (disputed if isinstance(disputed, int) else total)
    to_cents = min(total, given)
    if to_cents <= before:
        return "ignored"
    await give_back(commerce, conn, order, to_cents, kind, refund_by_us=False)
    await history.record(conn, order["id"], order["state"], "payment",
                         f"the payment provider gave back {to_cents - before} cents ({kind})",
                         commerce.node.clock.now_ms())
    return "order-reversed"


async def confirm_local_payment(commerce: Commerce, buyer: Account, order_id: int, card_number: str) -> asyncpg.Record:
    """The local provider's card page for an order: pay, then deliver the signed event to the payment webhook."""
    if commerce.payments.name != "local":
        raise Problem(409, "not-local-provider", "this node takes payments through Stripe, not the test provider")
    order = await history.get_order(commerce.node.pool, buyer.id, order_id)
    if order["payment_ref"] is None:
        raise Problem(409, "payment-not-started", "this order's payment was not started; retry the order")
    paid = "".join(ch for ch in card_number if ch.isdigit()) == SUCCEEDING_CARD  # the route takes only test cards
    kind = "payment_intent.succeeded" if paid else "payment_intent.payment_failed"
    await deliver_local_event(commerce, kind, order)
    return await history.get_order(commerce.node.pool, buyer.id, order_id)


async def deliver_local_event(commerce: Commerce, kind: str, order: asyncpg.Record) -> None:
    """The local provider tells the node about one of its order payments the way Stripe would: a signed event."""
    from commerce import purchases  # the payment webhook's entry point, which routes the event back here

    now_ms = commerce.node.clock.now_ms()
    event = local_intent_event(kind, order["payment_ref"], order["total_cents"], order["currency"],
                               {"order_id": str(order["id"])}, now_ms // 1000)
    payload = webhooks.encode_event(event)
    secret = (await commerce.webhook_secrets())[0]
    await purchases.receive_webhook(commerce, payload, webhooks.sign(payload, secret, now_ms))


async def send_refunds(commerce: Commerce, order_id: int | None = None) -> int:
    """Ask the payment provider to refund what orders gave back but the provider was not asked for yet (one order,
    or a batch of any); a refund keyed by its running total is sent at most once. How many were sent."""
    pool, limit = commerce.node.pool, commerce.node.settings.order_sweep_batch_max
    due = await pool.fetch(
        "SELECT * FROM orders WHERE refund_sent_cents < reversed_cents AND ($1::bigint IS NULL OR id = $1)"
        " ORDER BY id LIMIT $2", order_id, limit)
    sent = 0
    for order in due:
        cents = order["reversed_cents"] - order["refund_sent_cents"]
        try:
            await commerce.payments.refund(order["payment_ref"], cents,
                                           f"order-refund-{order['id']}-{order['reversed_cents']}")
        except PaymentProviderError as exc:
            log.warning("refund of %d cents for order %d not sent yet: %s", cents, order["id"], exc)
            continue
        await pool.execute("UPDATE orders SET refund_sent_cents = $2 WHERE id = $1 AND refund_sent_cents = $3",
                           order["id"], order["reversed_cents"], order["refund_sent_cents"])
        sent += 1
    return sent
