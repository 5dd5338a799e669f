"""An order's row, its state history and how they are shown to the buyer and to the creator who sells."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from livecore.http import Problem


def external_id(order_id: int) -> str:
    """The order's id at the fulfilment provider's side (its `external_id`)."""
    return f"livecore-order-{order_id}"


def order_id_of(external: str) -> int | None:
    digits = external.removeprefix("livecore-order-")
    return int(digits) if external.startswith("livecore-order-") and digits.isdigit() and len(digits) < 19 else None


async def record(conn: asyncpg.Connection, order_id: int, state: str, source: str, detail: str | None,
                 at_ms: int) -> None:
    """Append one entry to the order's history (inside the transaction that changed it)."""
    await conn.execute(
        "INSERT INTO order_history (order_id, n, state, source, detail, at_ms)"
        " SELECT $1, coalesce(max(n), 0) + 1, $2, $3, $4, $5 FROM order_history WHERE order_id = $1",
        order_id, state, source, detail, at_ms)


async def move(conn: asyncpg.Connection, order: asyncpg.Record, state: str, source: str, detail: str | None,
               at_ms: int, **columns: Any) -> asyncpg.Record:
    """Put the order in `state` (and set `columns`), with its history entry; the updated row."""
    names = ["state", "updated_ms", *columns]
    sets = ", ".join(f"{name} = ${n + 2}" for n, name in enumerate(names))
    row = await conn.fetchrow(f"UPDATE orders SET {sets} WHERE id = $1 RETURNING *",
                              order["id"], state, at_ms, *columns.values())
    await record(conn, order["id"], state, source, detail, at_ms)
    return row


async def order_view(pool: asyncpg.Pool, order: asyncpg.Record) -> dict[str, Any]:
    items = await pool.fetch(
        "SELECT i.*, p.title FROM order_items i JOIN products p ON p.id = i.product_id WHERE i.order_id = $1"
        " ORDER BY i.line", order["id"])
    history = await pool.fetch("SELECT * FROM order_history WHERE order_id = $1 ORDER BY n", order["id"])
    payment: dict[str, Any] = {"provider": order["payment_provider"], "payment_id": order["payment_ref"]}
    if order["state"] == "pending":
        payment["client_secret"] = order["client_secret"]
        if order["payment_provider"] == "local":
            payment["pay_url"] = f"/pay.html?order={order['id']}"
    return {
        "id": order["id"], "state": order["state"], "source": order["source"], "auction_id": order["auction_id"],
        "buyer_id": order["buyer_id"], "creator_id": order["creator_id"],
        "items": [{"product_id": i["product_id"], "title": i["title"], "variant_id": i["variant_id"],
                   "quantity": i["quantity"], "unit_price_cents": i["unit_price_cents"]} for i in items],
        "shipping_address": orjson.loads(order["shipping_address"]),
        "currency": order["currency"], "items_cents": order["items_cents"],
        "shipping_cents": order["shipping_cents"], "total_cents": order["total_cents"],
        "shipping_service": order["shipping_service"], "refunded_cents": order["reversed_cents"],
        "payment": payment, "tracking": orjson.loads(order["tracking"]) if order["tracking"] else None,
        "failure": order["failure"], "created_at": order["created_ms"], "updated_at": order["updated_ms"],
        "history": [{"state": h["state"], "source": h["source"], "detail": h["detail"], "at": h["at_ms"]}
                    for h in history],
    }


async def get_order(pool: asyncpg.Pool, buyer_id: int, order_id: int) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM orders WHERE id = $1 AND buyer_id = $2", order_id, buyer_id)
    if row is None:
        raise Problem(404, "order-not-found", f"you have no order {order_id}")
    return row


async def list_orders(pool: asyncpg.Pool, buyer_id: int, before_id: int | None,
                      limit: int) -> tuple[list[dict], bool]:
    """A page of the buyer's orders, newest first, and whether older ones follow."""
    rows = await pool.fetch("SELECT * FROM orders WHERE buyer_id = $1 AND ($2::bigint IS NULL OR id < $2)"
                            " ORDER BY id DESC LIMIT $3", buyer_id, before_id, limit + 1)
    return [await order_view(pool, r) for r in rows[:limit]], len(rows) > limit


async def sales(pool: asyncpg.Pool, creator_id: int, before_id: int | None, limit: int) -> dict[str, Any]:
    """A creator's paid orders, newest first, with the margin of each (held until it ships, then earned) and the
    totals over all of them."""
    rows = await pool.fetch(
        "SELECT o.*, (SELECT json_agg(json_build_object('product_id', i.product_id, 'variant_id', i.variant_id,"
        " 'quantity', i.quantity, 'unit_price_cents', i.unit_price_cents) ORDER BY i.line) FROM order_items i"
        " WHERE i.order_id = o.id) AS items FROM orders o WHERE o.creator_id = $1 AND o.paid_ms IS NOT NULL"
        " AND ($2::bigint IS NULL OR o.id < $2) ORDER BY o.id DESC LIMIT $3", creator_id, before_id, limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    held = await pool.fetchval(
        "SELECT coalesce(-sum(balance), 0)::bigint FROM ledger_accounts WHERE owner_id = $1"
        " AND kind = 'merch_margin_held'", creator_id)
    earned = await pool.fetchval(  # released margins less what returns took back (the shares of money.Shares)
        "SELECT coalesce(sum(margin_cents - (reversed_cents - fee_cents * reversed_cents / total_cents"
        " - cost_cents * reversed_cents / total_cents)), 0)::bigint FROM orders WHERE creator_id = $1"
        " AND margin_released_ms IS NOT NULL", creator_id)
    return {
        "margin_held_cents": held, "margin_released_cents": earned,
        "sales": [{"order_id": r["id"], "state": r["state"], "items": orjson.loads(r["items"]),
                   "items_cents": r["items_cents"], "margin_cents": r["margin_cents"],
                   "margin_released": r["margin_released_ms"] is not None, "refunded_cents": r["reversed_cents"],
                   "paid_at": r["paid_ms"]} for r in rows],
        "next_before": rows[-1]["id"] if more else None,
    }
