"""Orders at the fulfilment provider: paid orders are placed (and confirmed) there, cancellations asked for, and
its signed callbacks move the order through the print-on-demand lifecycle.

A callback is applied once (its webhook-id is recorded in the transaction that applies it) and only if it is newer
than the provider's version already applied (`seq`), so duplicates and reordered callbacks change nothing. Reaching
shipped (or anything after it) releases the creator's margin once; failed, cancelled and returned give the buyer
the whole order back once, and the refund is then sent through the payment provider.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from commerce.fulfilment import (
    FulfilmentRefused,
    FulfilmentUnavailable,
    Item,
    ProviderOrder,
    WebhookHeaders,
    lifecycle,
    recipient_of,
    verify,
)
from commerce.orders import history, money
from commerce.orders.payments import send_refunds
from livecore.accounts import Account
from livecore.http import Problem

if TYPE_CHECKING:
    from commerce.service import Commerce

log = logging.getLogger("livecore.commerce.orders")


async def receive_webhook(commerce: Commerce, payload: bytes, headers: WebhookHeaders) -> dict[str, Any]:
    """Verify a fulfilment callback and apply it once; forged, stale or malformed is a 400 and changes nothing."""
    secret = commerce.node.settings.fulfilment_webhook_secret
    if not secret:
        raise Problem(503, "webhooks-not-configured", "set fulfilment_webhook_secret to receive the fulfilment "
                      "provider's callbacks")
    callback = verify(payload, headers, secret)
    order_id = history.order_id_of(callback.order["external_id"])
    creator_id = await commerce.node.pool.fetchval("SELECT creator_id FROM orders WHERE id = $1", order_id)
    if creator_id is not None:
        await money.resolve_accounts(commerce, creator_id)
    now_ms = commerce.node.clock.now_ms()
    async with commerce.node.pool.acquire() as conn, conn.transaction():
        first = await conn.fetchval(
            "INSERT INTO fulfilment_events (webhook_id, type, order_id, outcome, received_ms)"
            " VALUES ($1, $2, $3, 'received', $4) ON CONFLICT DO NOTHING RETURNING 1",
            callback.webhook_id, callback.type, order_id, now_ms)
        if first is None:
            outcome = "duplicate"
        else:
            order = await conn.fetchrow("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order_id)
            outcome = "ignored" if order is None else await apply_provider_state(
                commerce, conn, order, callback.order["status"], callback.order["seq"], callback.order)
            await conn.execute("UPDATE fulfilment_events SET outcome = $2 WHERE webhook_id = $1",
                               callback.webhook_id, outcome)
    commerce.orders.metrics.callbacks.labels(outcome=outcome).inc()
    if order_id is not None and outcome in lifecycle.UNWOUND:
        await send_refunds(commerce, order_id)
    return {"received": True, "webhook_id": callback.webhook_id, "outcome": outcome}


async def apply_provider_state(commerce: Commerce, conn: asyncpg.Connection, order: asyncpg.Record, status: str,
                               seq: int, facts: dict[str, Any]) -> str:
    """Move a locked order to what the provider says it is now; the new state, `stale` (an older version than
    the one applied), or `ignored` (not one of the provider's states, or an order it should not have)."""
    state = lifecycle.FROM_PROVIDER.get(status)
    if state is None or order["paid_ms"] is None:
        return "ignored"
    if seq <= order["provider_seq"]:
        return "stale"
    now_ms = commerce.node.clock.now_ms()
    tracking = facts.get("tracking") if isinstance(facts.get("tracking"), dict) else None
    reason = facts.get("reason") if isinstance(facts.get("reason"), str) else None
    columns: dict[str, Any] = {"provider_seq": seq}
    if tracking is not None:
        columns["tracking"] = orjson.dumps(tracking).decode()
    if state in lifecycle.UNWOUND:
        columns["failure"] = reason
    if isinstance(facts.get("id"), str) and order["provider_order_id"] is None:
        columns["provider_order_id"] = facts["id"]
    if state == order["state"]:
        await conn.execute("UPDATE orders SET provider_seq = $2 WHERE id = $1", order["id"], seq)
        return state
    order = await history.move(conn, order, state, "fulfilment", _detail(state, tracking, reason), now_ms, **columns)
    if state in lifecycle.HAS_SHIPPED and order["margin_released_ms"] is None:
        order = await money.release_margin(commerce, conn, order)
    if state in lifecycle.UNWOUND:
        await money.give_back(commerce, conn, order, order["total_cents"], state, refund_by_us=True)
    return state


def _detail(state: str, tracking: dict[str, Any] | None, reason: str | None) -> str | None:
    if state == lifecycle.SHIPPED and tracking:
        return f"shipped with {tracking.get('carrier')}, tracking {tracking.get('number')}"
    return reason


async def place_paid_orders(commerce: Commerce, order_id: int | None = None) -> int:
    """Place paid orders that are not yet at the provider (one, or a batch of any); how many were placed. A
    failure leaves the order for the next sweep (the provider knows a retry by the order's external id)."""
    pool = commerce.node.pool
    due = await pool.fetch(
        "SELECT * FROM orders WHERE state = 'paid' AND provider_order_id IS NULL AND reversed_cents < total_cents"
        " AND ($1::bigint IS NULL OR id = $1) ORDER BY paid_ms LIMIT $2",
        order_id, commerce.node.settings.order_sweep_batch_max)
    placed = 0
    for order in due:
        items = [Item(r["variant_id"], r["quantity"]) for r in await pool.fetch(
            "SELECT variant_id, quantity FROM order_items WHERE order_id = $1 ORDER BY line", order["id"])]
        address = orjson.loads(order["shipping_address"])
        try:
            made = await commerce.orders.provider().place_order(history.external_id(order["id"]),
                                                                recipient_of(address), items)
        except FulfilmentUnavailable as exc:
            log.warning("order %d not placed yet: %s", order["id"], exc)
            continue
        except FulfilmentRefused as exc:
            log.error("the fulfilment provider refused order %d: %s", order["id"], exc)
            await _refused(commerce, order["id"], str(exc))
            continue
        await _placed(commerce, order["id"], made)
        placed += 1
    return placed


async def _placed(commerce: Commerce, order_id: int, made: ProviderOrder) -> None:
    if made.items_cents + made.shipping_cents != (await commerce.node.pool.fetchval(
            "SELECT cost_cents FROM orders WHERE id = $1", order_id)):
        log.warning("the provider charges %d + %d cents for order %d, not what was set aside", made.items_cents,
                    made.shipping_cents, order_id)
    async with commerce.node.pool.acquire() as conn, conn.transaction():
        order = await conn.fetchrow("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order_id)
        if order["provider_order_id"] is not None:
            return
        await conn.execute("UPDATE orders SET provider_order_id = $2 WHERE id = $1", order_id, made.id)
        await history.record(conn, order_id, order["state"], "fulfilment", f"placed with the provider as {made.id}",
                             commerce.node.clock.now_ms())
        order = await conn.fetchrow("SELECT * FROM orders WHERE id = $1", order_id)
        await apply_provider_state(commerce, conn, order, made.status, made.seq, {})


async def _refused(commerce: Commerce, order_id: int, why: str) -> None:
    async with commerce.node.pool.acquire() as conn, conn.transaction():
        order = await conn.fetchrow("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order_id)
        if order["state"] != lifecycle.PAID or order["provider_order_id"] is not None:
            return
        order = await history.move(conn, order, lifecycle.FAILED, "fulfilment", why, commerce.node.clock.now_ms(),
                                   failure=why)
        await money.give_back(commerce, conn, order, order["total_cents"], lifecycle.FAILED, refund_by_us=True)
    await send_refunds(commerce, order_id)


async def cancel_order(commerce: Commerce, buyer: Account, order_id: int) -> asyncpg.Record:
    """The buyer cancels: an unpaid order at once; a paid one not yet in production through the provider (or at
    once if it was not placed yet), the money going back as with any cancellation."""
    order = await history.get_order(commerce.node.pool, buyer.id, order_id)
    if order["state"] == lifecycle.CANCELLED:
        return order
    if order["state"] not in lifecycle.CANCELLABLE_BY_BUYER:
        raise Problem(409, "order-not-cancellable", f"an order that is {order['state']} can no longer be "
                      "cancelled", state=order["state"])
    if order["provider_order_id"] is not None:
        try:
            answer = await commerce.orders.provider().cancel(order["provider_order_id"])
        except FulfilmentRefused as exc:
            raise Problem(409, "order-not-cancellable", f"the fulfilment provider cannot cancel it: {exc}") from exc
        except FulfilmentUnavailable as exc:
            raise Problem(502, "fulfilment-provider-unavailable", str(exc)) from exc
        async with commerce.node.pool.acquire() as conn, conn.transaction():
            locked = await conn.fetchrow("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order_id)
            await apply_provider_state(commerce, conn, locked, answer.status, answer.seq,
                                       {"reason": "cancelled by the buyer"})
    else:
        async with commerce.node.pool.acquire() as conn, conn.transaction():
            locked = await conn.fetchrow("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order_id)
            if locked["state"] in lifecycle.CANCELLABLE_BY_BUYER and locked["provider_order_id"] is None:
                locked = await history.move(conn, locked, lifecycle.CANCELLED, "buyer", "cancelled by the buyer",
                                            commerce.node.clock.now_ms(), failure="cancelled by the buyer")
                if locked["paid_ms"] is not None:
                    await money.give_back(commerce, conn, locked, locked["total_cents"], lifecycle.CANCELLED,
                                          refund_by_us=True)
    await send_refunds(commerce, order_id)
    return await history.get_order(commerce.node.pool, buyer.id, order_id)
