"""Test helpers for orders: a creator's product, addresses that pass their country's checks, an order paid with
the local provider's test card, and the ledger's view of an order, all through the node's real HTTP API."""

from __future__ import annotations

from typing import Any

from images import design_png, upload
from livenode import RunningNode
from money import api, key

from commerce.providers import SUCCEEDING_CARD

VARIANT = "tshirt-m-black"  # base cost 1295
PRICE_CENTS = 2500  # fee 250 + 30, margin 925
US_ADDRESS = {"name": "Ada Buyer", "line1": "1 Main St", "city": "Beverly Hills", "subdivision": "CA",
              "postcode": "90210", "country": "US"}
GB_ADDRESS = {"name": "Ben Buyer", "line1": "10 Downing St", "city": "London", "postcode": "SW1A 2AA",
              "country": "GB"}
DE_ADDRESS = {"name": "Cleo Käufer", "line1": "Unter den Linden 1", "city": "Berlin", "postcode": "10117",
              "country": "DE"}


async def product(node: RunningNode, creator_token: str, price_cents: int = PRICE_CENTS) -> dict[str, Any]:
    status, design = await upload(node, creator_token, design_png())
    assert status in (200, 201), design
    status, made = await api(node, "POST", "/api/products", creator_token, {
        "design_id": design["id"], "base_item_id": "tshirt", "title": "Shop tee", "price_cents": price_cents,
        "variant_ids": [VARIANT, "tshirt-s-black"]})
    assert status == 201, made
    return made


async def order(node: RunningNode, token: str, product_id: int, quantity: int = 1,
                address: dict[str, Any] | None = None) -> dict[str, Any]:
    status, made = await api(node, "POST", "/api/orders", token, {
        "items": [{"product_id": product_id, "variant_id": VARIANT, "quantity": quantity}],
        "shipping_address": address or US_ADDRESS, "idempotency_key": key()})
    assert status == 201, made
    assert made["state"] == "pending"
    return made


async def pay(node: RunningNode, token: str, order_id: int, card: str = SUCCEEDING_CARD) -> dict[str, Any]:
    status, paid = await api(node, "POST", f"/api/payments/local/orders/{order_id}/confirm", token,
                             {"card_number": card})
    assert status == 200, paid
    return paid


async def get(node: RunningNode, token: str, order_id: int) -> dict[str, Any]:
    status, found = await api(node, "GET", f"/api/orders/{order_id}", token)
    assert status == 200, found
    return found


async def provider_order_id(node: RunningNode, order_id: int) -> str:
    found = await node.node.pool.fetchval("SELECT provider_order_id FROM orders WHERE id = $1", order_id)
    assert found is not None, "the order was not placed with the provider"
    return found


async def postings(node: RunningNode, order_id: int) -> dict[str, int]:
    """How many journal transactions of each kind name the order."""
    rows = await node.node.pool.fetch(
        "SELECT kind, count(*) AS n FROM ledger_transactions WHERE details->>'order_id' = $1 GROUP BY kind",
        str(order_id))
    return {r["kind"]: r["n"] for r in rows}


async def withdrawable_diamonds(node: RunningNode, creator_id: int) -> int:
    return await node.node.pool.fetchval(
        "SELECT coalesce(sum(balance), 0)::bigint FROM ledger_accounts WHERE owner_id = $1"
        " AND kind = 'earnings_withdrawable'", creator_id)
