"""Test helpers for money: calls through the node's real HTTP API, signed provider events, the invariants."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
import stripe
from livenode import RunningNode

from commerce import COMMERCE, Commerce, invariants
from commerce.providers import SUCCEEDING_CARD


async def api(node: RunningNode, method: str, path: str, token: str | None = None, json: Any = None,
              headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, Any]:
    sent = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    async with node.http.request(method, node.url + path, json=json, data=data, headers=sent) as response:
        body = await response.json(content_type=None) if response.content_length != 0 else None
        return response.status, body


def key() -> str:
    return secrets.token_hex(8)


def commerce_of(node: RunningNode) -> Commerce:
    return node.app[COMMERCE]


async def buy_coins(node: RunningNode, token: str, package_id: str = "coins_100") -> dict[str, Any]:
    """Buy a package with the local provider's succeeding test card; the coins come from its signed webhook."""
    status, purchase = await api(node, "POST", "/api/coins/purchases", token,
                                 {"package_id": package_id, "idempotency_key": key()})
    assert status == 201, purchase
    status, paid = await api(node, "POST", f"/api/payments/local/{purchase['id']}/confirm", token,
                             {"card_number": SUCCEEDING_CARD})
    assert status == 200 and paid["state"] == "succeeded", paid
    return paid


async def coins(node: RunningNode, token: str) -> int:
    status, wallet = await api(node, "GET", "/api/wallet", token)
    assert status == 200, wallet
    return wallet["coins"]


def signed_event(event: dict[str, Any], secret: str, timestamp_s: int) -> tuple[bytes, str]:
    payload = orjson.dumps(event)
    return payload, stripe.WebhookSignature.generate_signature_header(payload.decode(), secret, timestamp=timestamp_s)


def event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {"id": event_id or "evt_" + secrets.token_hex(8), "object": "event", "type": event_type,
            "data": {"object": obj}}


def intent(ref: str, amount_cents: int, currency: str = "usd") -> dict[str, Any]:
    return {"id": ref, "object": "payment_intent", "amount": amount_cents, "currency": currency, "status": "succeeded"}


def refund(ref: str, amount_refunded_cents: int, full: bool = True) -> dict[str, Any]:
    """A charge after refunds: `amount_refunded` is Stripe's running total; `refunded` says all of it went back."""
    return {"id": "ch_" + secrets.token_hex(6), "object": "charge", "payment_intent": ref, "refunded": full,
            "amount_refunded": amount_refunded_cents}


def dispute(ref: str, amount_cents: int) -> dict[str, Any]:
    return {"id": "dp_" + secrets.token_hex(6), "object": "dispute", "payment_intent": ref, "amount": amount_cents}


async def assert_invariants(node: RunningNode) -> None:
    broken = await invariants.violations(node.node.pool)
    assert not broken, broken
