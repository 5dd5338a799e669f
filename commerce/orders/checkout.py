"""Buying at a fixed price: a shipping quote, then an order (pending) with a payment started at the payment
provider. Only the provider's verified webhook makes it paid (payments.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from commerce import merch
from commerce.fulfilment import FulfilmentRefused, FulfilmentUnavailable, Item, Quote, recipient_of
from commerce.orders import history, money
from commerce.orders.addresses import Address, check_address
from commerce.providers import PaymentProviderError
from livecore.accounts import Account
from livecore.http import Problem

if TYPE_CHECKING:
    from commerce.orders.service import Orders


@dataclass(frozen=True)
class Line:
    """One line of an order, priced: the creator's price, the provider's base cost, the platform's fee."""

    product_id: int
    variant_id: str
    quantity: int
    creator_id: int
    unit_price_cents: int
    unit_base_cost_cents: int
    unit_fee_cents: int


@dataclass(frozen=True)
class Totals:
    items_cents: int
    shipping_cents: int
    fee_cents: int
    cost_cents: int
    margin_cents: int

    @property
    def total_cents(self) -> int:
        return self.items_cents + self.shipping_cents

    @classmethod
    def of(cls, lines: list[Line], shipping_cents: int) -> Totals:
        items = sum(line.unit_price_cents * line.quantity for line in lines)
        fee = sum(line.unit_fee_cents * line.quantity for line in lines)
        base = sum(line.unit_base_cost_cents * line.quantity for line in lines)
        return cls(items, shipping_cents, fee, base + shipping_cents, items - fee - base)


async def price_line(ctx: Orders, product_id: int, variant_id: str, quantity: int,
                     unit_price_cents: int | None = None) -> Line:
    """A line at the product's price (or at `unit_price_cents`: what an auction's winner bid)."""
    _check_quantity(ctx, quantity)
    variant = await merch.offered_variant(ctx.pool, product_id, variant_id)
    price = variant.price_cents if unit_price_cents is None else unit_price_cents
    fees = ctx.commerce.merch.fees
    return Line(product_id, variant_id, quantity, variant.creator_id, price, variant.base_cost_cents,
                price * fees.percent // 100 + fees.fixed_cents)


def _check_quantity(ctx: Orders, quantity: int) -> None:
    limit = ctx.settings.order_quantity_max
    if not 1 <= quantity <= limit:
        raise Problem(400, "invalid-field", f"quantity must be from 1 to {limit}", field="quantity",
                      rule="order_quantity_max", limit_value=limit)


async def quote(ctx: Orders, address: Address, items: list[Item]) -> tuple[dict[str, Any], Quote]:
    """The checked address and the provider's cheapest shipping for these items to it."""
    checked = check_address(address)
    try:
        found = await ctx.provider().quote(recipient_of(checked), items)
    except FulfilmentRefused as exc:
        raise Problem(422, "cannot-ship-there", f"the fulfilment provider cannot ship this: {exc}",
                      field="address") from exc
    except FulfilmentUnavailable as exc:
        raise Problem(502, "fulfilment-provider-unavailable", str(exc)) from exc
    return checked, found


async def shipping_quote(ctx: Orders, product_id: int | None, variant_id: str, quantity: int,
                         address: Address) -> dict[str, Any]:
    _check_quantity(ctx, quantity)
    if product_id is not None:
        await price_line(ctx, product_id, variant_id, quantity)
    elif not any(item.variant(variant_id) for item in ctx.commerce.merch.items.values()):
        raise Problem(404, "variant-not-found", f"there is no variant {variant_id!r}; see GET /api/base-items")
    checked, found = await quote(ctx, address, [Item(variant_id, quantity)])
    return {**found.public(), "address": checked, "variant_id": variant_id, "quantity": quantity}


async def create_order(ctx: Orders, buyer: Account, wanted: list[tuple[int, str, int]], address: Address,
                       idempotency_key: str) -> tuple[dict[str, Any], bool]:
    """An order of products from one creator, pending until paid, with its payment started; (its view, whether
    it is new). A retry with the same key returns the first order and changes nothing."""
    existing = await ctx.pool.fetchrow("SELECT * FROM orders WHERE buyer_id = $1 AND idempotency_key = $2",
                                       buyer.id, idempotency_key)
    if existing is not None:
        return await history.order_view(ctx.pool, await _start_payment(ctx, existing)), False
    limit = ctx.settings.order_lines_max
    if not 1 <= len(wanted) <= limit:
        raise Problem(400, "invalid-field", f"an order has 1 to {limit} items", field="items",
                      rule="order_lines_max", limit_value=limit)
    lines = [await price_line(ctx, product_id, variant_id, quantity) for product_id, variant_id, quantity in wanted]
    if len({line.creator_id for line in lines}) > 1:
        raise Problem(422, "one-creator-per-order", "an order holds one creator's products; order from each "
                      "creator's shop separately", field="items")
    checked, shipping = await quote(ctx, address, [Item(line.variant_id, line.quantity) for line in lines])
    row, created = await insert_order(ctx, buyer.id, idempotency_key, "checkout", None, lines, checked, shipping)
    return await history.order_view(ctx.pool, await _start_payment(ctx, row)), created


async def insert_order(ctx: Orders, buyer_id: int, idempotency_key: str, source: str, auction_id: int | None,
                       lines: list[Line], address: dict[str, Any], shipping: Quote) -> tuple[asyncpg.Record, bool]:
    """Store a pending order with its lines and first history entry; (the row, whether it is new)."""
    totals = Totals.of(lines, shipping.shipping_cents)
    creator_id = lines[0].creator_id
    await money.resolve_accounts(ctx.commerce, creator_id)  # before any webhook posts to them
    now_ms = ctx.clock.now_ms()
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO orders (buyer_id, creator_id, idempotency_key, source, auction_id, shipping_address,"
            " items_cents, shipping_cents, total_cents, fee_cents, cost_cents, margin_cents, shipping_service,"
            " payment_provider, fulfilment_provider, created_ms, updated_ms)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)"
            " ON CONFLICT (buyer_id, idempotency_key) DO NOTHING RETURNING *",
            buyer_id, creator_id, idempotency_key, source, auction_id, orjson.dumps(address).decode(),
            totals.items_cents, totals.shipping_cents, totals.total_cents, totals.fee_cents, totals.cost_cents,
            totals.margin_cents, shipping.service, ctx.commerce.payments.name, ctx.provider().name, now_ms)
        if row is None:  # the same request, committed meanwhile
            return await conn.fetchrow("SELECT * FROM orders WHERE buyer_id = $1 AND idempotency_key = $2",
                                       buyer_id, idempotency_key), False
        await conn.executemany(
            "INSERT INTO order_items (order_id, line, product_id, variant_id, quantity, unit_price_cents,"
            " unit_base_cost_cents, unit_fee_cents) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [(row["id"], n, line.product_id, line.variant_id, line.quantity, line.unit_price_cents,
              line.unit_base_cost_cents, line.unit_fee_cents) for n, line in enumerate(lines, 1)])
        await history.record(conn, row["id"], "pending", source, "waiting for the payment", now_ms)
    return row, True


async def _start_payment(ctx: Orders, row: asyncpg.Record) -> asyncpg.Record:
    """Start the order's payment once (a PaymentIntent keyed by the order, so a retry gets the same one)."""
    if row["payment_ref"] is not None or row["source"] != "checkout":
        return row
    try:
        started = await ctx.commerce.payments.start_payment(
            row["total_cents"], row["currency"], {"order_id": str(row["id"])}, f"order-{row['id']}")
    except PaymentProviderError as exc:
        raise Problem(502, "payment-provider-unavailable", str(exc)) from exc
    updated = await ctx.pool.fetchrow(
        "UPDATE orders SET payment_ref = $2, client_secret = $3 WHERE id = $1 AND payment_ref IS NULL RETURNING *",
        row["id"], started.provider_ref, started.client_secret)
    return updated or await ctx.pool.fetchrow("SELECT * FROM orders WHERE id = $1", row["id"])
