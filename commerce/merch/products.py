"""Products: a creator's design on a base item, offered in some or all of its variants at the creator's price.

The price may never be below a variant's floor: its base cost plus the fees (the platform's percentage of the
price and a fixed fee per item), so every sale at least pays for making the item. Mockups are drawn before the
product is stored, so every listed variant has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from commerce.merch import designs, mockups
from commerce.merch.catalogue import Variant
from livecore.accounts import Account
from livecore.http import Problem

if TYPE_CHECKING:
    from commerce.merch.service import Merch

_VIEW = """
SELECT p.id, p.creator_id, p.design_id, p.base_item_id, b.name AS base_item_name, p.title, p.price_cents,
       p.created_ms, a.username, a.display_name,
       json_agg(json_build_object('id', v.id, 'size', v.size, 'colour', v.colour, 'colour_hex', v.colour_hex,
                                  'price_cents', pv.price_cents, 'base_cost_cents', v.base_cost_cents)
                ORDER BY pv.position) AS variants
FROM products p JOIN accounts a ON a.id = p.creator_id JOIN base_items b ON b.id = p.base_item_id
JOIN product_variants pv ON pv.product_id = p.id JOIN base_item_variants v ON v.id = pv.variant_id
"""


@dataclass(frozen=True)
class Fees:
    percent: int
    fixed_cents: int

    def floor_cents(self, base_cost_cents: int) -> int:
        """The lowest price that leaves the base cost after the fees: p - p * percent / 100 - fixed >= base."""
        return -(-(base_cost_cents + self.fixed_cents) * 100 // (100 - self.percent))


def below_floor(variant: Variant, fees: Fees, price_cents: int) -> Problem:
    floor = fees.floor_cents(variant.base_cost_cents)
    return Problem(
        422, "price-below-floor",
        f"the price must be at least {floor} cents: {variant.id} costs {variant.base_cost_cents} to make, plus "
        f"{fees.percent}% and {fees.fixed_cents} cents in fees",
        rule="price_floor", floor_cents=floor, price_cents=price_cents, variant_id=variant.id,
        base_cost_cents=variant.base_cost_cents, fee_percent=fees.percent, fee_fixed_cents=fees.fixed_cents,
    )


async def create_product(
    merch: Merch, creator: Account, design_id: int, base_item_id: str, title: str, price_cents: int,
    variant_ids: list[str] | None, idempotency_key: str | None,
) -> tuple[dict[str, Any], bool]:
    """A new product and whether it is new (a retry with the same key returns the first one)."""
    if "creator" not in creator.roles:
        raise Problem(403, "not-a-creator", "only creator accounts can make products")
    pool = merch.pool
    if idempotency_key:
        existing = await pool.fetchval("SELECT id FROM products WHERE creator_id = $1 AND idempotency_key = $2",
                                       creator.id, idempotency_key)
        if existing is not None:
            return await get_product(pool, existing), False
    item = merch.items.get(base_item_id)
    if item is None:
        raise Problem(404, "base-item-not-found", f"there is no base item {base_item_id!r}; see GET /api/base-items")
    offered = _offered(item.variants, variant_ids)
    dearest = max(offered, key=lambda v: v.base_cost_cents)
    if price_cents < merch.fees.floor_cents(dearest.base_cost_cents):
        raise below_floor(dearest, merch.fees, price_cents)
    design = await designs.design_image(pool, creator.id, design_id)
    await _draw_mockups(merch, design_id, design, base_item_id, offered)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('products'), $1::int)", creator.id)
        if idempotency_key:
            existing = await conn.fetchval(
                "SELECT id FROM products WHERE creator_id = $1 AND idempotency_key = $2", creator.id, idempotency_key)
            if existing is not None:
                return await get_product(pool, existing), False
        count = await conn.fetchval("SELECT count(*) FROM products WHERE creator_id = $1", creator.id)
        limit = merch.settings.products_per_creator_max
        if count >= limit:
            raise Problem(409, "too-many-products", f"a creator may have at most {limit} products",
                          rule="products_per_creator_max", limit_value=limit)
        product_id = await conn.fetchval(
            "INSERT INTO products (creator_id, design_id, base_item_id, title, price_cents, idempotency_key,"
            " created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            creator.id, design_id, base_item_id, title, price_cents, idempotency_key, merch.clock.now_ms(),
        )
        await conn.executemany(
            "INSERT INTO product_variants (product_id, variant_id, price_cents, floor_cents, position)"
            " VALUES ($1, $2, $3, $4, $5)",
            [(product_id, v.id, price_cents, merch.fees.floor_cents(v.base_cost_cents), n)
             for n, v in enumerate(offered)],
        )
    return await get_product(pool, product_id), True


def _offered(variants: tuple[Variant, ...], variant_ids: list[str] | None) -> list[Variant]:
    if not variant_ids:
        return list(variants)
    by_id = {v.id: v for v in variants}
    unknown = [v for v in variant_ids if v not in by_id]
    if unknown:
        raise Problem(400, "invalid-field", f"these variants are not variants of this base item: {unknown}",
                      field="variant_ids")
    return [by_id[v] for v in dict.fromkeys(variant_ids)]


async def _draw_mockups(merch: Merch, design_id: int, design: bytes, base_item_id: str,
                        offered: list[Variant]) -> None:
    colours = {mockups.colour_key(v.colour): v.colour_hex for v in offered}
    missing = await mockups.missing_colours(merch.pool, design_id, base_item_id, list(colours))
    if missing:
        drawn = await merch.workers.run(mockups.render_mockups, design, merch.items[base_item_id],
                                        {k: colours[k] for k in missing}, merch.settings.mockup_edge_px)
        await mockups.store_mockups(merch.pool, design_id, base_item_id, drawn, merch.clock.now_ms())


async def get_product(pool: asyncpg.Pool, product_id: int) -> dict[str, Any]:
    row = await pool.fetchrow(_VIEW + " WHERE p.id = $1 GROUP BY p.id, a.id, b.id", product_id)
    if row is None:
        raise Problem(404, "product-not-found", f"there is no product {product_id}")
    return product_view(row)


async def list_products(pool: asyncpg.Pool, creator_id: int, before_id: int | None, limit: int) -> list[dict]:
    """A creator's products, newest first, `limit` at most, older than `before_id` when given."""
    rows = await pool.fetch(
        _VIEW + " WHERE p.creator_id = $1 AND ($2::bigint IS NULL OR p.id < $2) GROUP BY p.id, a.id, b.id"
        " ORDER BY p.id DESC LIMIT $3",
        creator_id, before_id, limit,
    )
    return [product_view(r) for r in rows]


def product_view(row: asyncpg.Record) -> dict[str, Any]:
    variants = orjson.loads(row["variants"])
    for variant in variants:
        variant["mockup_url"] = mockup_url(row["id"], variant["id"])
    return {
        "id": row["id"], "title": row["title"], "price_cents": row["price_cents"], "currency": "USD",
        "creator": {"id": row["creator_id"], "username": row["username"], "display_name": row["display_name"]},
        "design_id": row["design_id"], "base_item": {"id": row["base_item_id"], "name": row["base_item_name"]},
        "variants": variants, "created_at": row["created_ms"],
    }


def mockup_url(product_id: int, variant_id: str) -> str:
    return f"/api/products/{product_id}/mockups/{variant_id}"


async def mockup_image(merch: Merch, product_id: int, variant_id: str) -> bytes:
    """The JPEG mockup of one of a product's variants."""
    row = await merch.pool.fetchrow(
        "SELECT p.design_id, p.base_item_id, v.colour FROM products p JOIN product_variants pv"
        " ON pv.product_id = p.id JOIN base_item_variants v ON v.id = pv.variant_id"
        " WHERE p.id = $1 AND pv.variant_id = $2", product_id, variant_id)
    if row is None:
        raise Problem(404, "mockup-not-found", f"product {product_id} has no variant {variant_id!r}")
    image = await merch.mockups.get(merch.pool, row["design_id"], row["base_item_id"],
                                    mockups.colour_key(row["colour"]))
    if image is None:
        raise Problem(404, "mockup-not-found", f"no mockup was drawn for {variant_id!r}")
    return image


@dataclass(frozen=True)
class OfferedVariant:
    """One variant of a product as another part of commerce needs it (auctions, later orders)."""

    product_id: int
    creator_id: int
    variant_id: str
    price_cents: int
    floor_cents: int
    base_cost_cents: int


async def offered_variant(pool: asyncpg.Pool, product_id: int, variant_id: str) -> OfferedVariant:
    row = await pool.fetchrow(
        "SELECT p.creator_id, pv.price_cents, pv.floor_cents, v.base_cost_cents FROM products p"
        " JOIN product_variants pv ON pv.product_id = p.id JOIN base_item_variants v ON v.id = pv.variant_id"
        " WHERE p.id = $1 AND pv.variant_id = $2", product_id, variant_id)
    if row is None:
        raise Problem(404, "variant-not-found", f"product {product_id} is not offered in variant {variant_id!r}")
    return OfferedVariant(product_id, row["creator_id"], variant_id, row["price_cents"], row["floor_cents"],
                          row["base_cost_cents"])
