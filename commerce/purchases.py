"""Buying coins: a purchase starts a payment with the provider; only a verified webhook event credits coins. The
same webhook carries the events of orders' payments, which it hands to commerce/orders/payments.py.

Events are applied in one database transaction with the record that they were seen, so a duplicate changes
nothing and a crash leaves the event unseen (the provider retries it). A refund or dispute gives back cents, in part
or in whole; the purchase keeps the running total and takes back the same share of its coins, once per new total.
Order does not matter: what was given back before the success is taken back right after the late success credits.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import asyncpg

from commerce import ledger, rules, webhooks
from commerce.ledger import Leg
from commerce.orders import payments as order_payments
from commerce.providers import SUCCEEDING_CARD, PaymentProviderError, local_payment_event
from livecore.accounts import Account
from livecore.http import Problem

if TYPE_CHECKING:
    from commerce.service import Commerce

log = logging.getLogger("livecore.commerce.purchases")


async def create_purchase(commerce: Commerce, buyer: Account, package_id: str, idempotency_key: str) -> dict:
    """Start buying a coin package; a retry with the same key returns the same purchase."""
    node, settings = commerce.node, commerce.node.settings
    rules.require_adult(buyer, node.today(), "buy coins")
    package = commerce.catalogue.packages.get(package_id)
    if package is None:
        raise Problem(404, "package-not-found", f"there is no coin package {package_id!r}")
    now_ms = node.clock.now_ms()
    await commerce.accounts.user(buyer.id, ledger.COINS)  # exists before any webhook posts to it
    async with node.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('coin_purchases'), $1::int)", buyer.id)
        row = await conn.fetchrow(
            "SELECT * FROM coin_purchases WHERE buyer_id = $1 AND idempotency_key = $2", buyer.id, idempotency_key
        )
        if row is None:
            if await conn.fetchval("SELECT frozen FROM ledger_accounts WHERE owner_id = $1 AND kind = 'coins'",
                                   buyer.id):
                raise Problem(403, "wallet-frozen", "this wallet is frozen after a refund or dispute")
            recent = await conn.fetchval(
                "SELECT count(*) FROM coin_purchases WHERE buyer_id = $1 AND created_ms > $2",
                buyer.id, now_ms - 3600_000,
            )
            if recent >= settings.purchases_per_hour_max:
                raise rules.purchase_velocity_refused(settings.purchases_per_hour_max)
            row = await conn.fetchrow(
                "INSERT INTO coin_purchases (buyer_id, idempotency_key, package_id, coins, amount_cents, currency,"
                " provider, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
                buyer.id, idempotency_key, package.id, package.coins, package.amount_cents, package.currency,
                commerce.payments.name, now_ms,
            )
    if row["provider_ref"] is None:
        row = await _start_payment(commerce, row)
    return purchase_view(row)


async def _start_payment(commerce: Commerce, row: asyncpg.Record) -> asyncpg.Record:
    try:
        started = await commerce.payments.start_payment(
            row["amount_cents"], row["currency"], {"purchase_id": str(row["id"])}, f"purchase-{row['id']}"
        )
    except PaymentProviderError as exc:
        raise Problem(502, "payment-provider-unavailable", str(exc)) from exc
    updated = await commerce.node.pool.fetchrow(
        "UPDATE coin_purchases SET provider_ref = $2, client_secret = $3 WHERE id = $1 AND provider_ref IS NULL"
        " RETURNING *",
        row["id"], started.provider_ref, started.client_secret,
    )
    return updated or await commerce.node.pool.fetchrow("SELECT * FROM coin_purchases WHERE id = $1", row["id"])


def purchase_view(row: asyncpg.Record) -> dict[str, Any]:
    view = {"id": row["id"], "package_id": row["package_id"], "coins": row["coins"],
            "amount_cents": row["amount_cents"], "currency": row["currency"], "state": row["state"],
            "provider": row["provider"], "payment_id": row["provider_ref"], "client_secret": row["client_secret"]}
    if row["provider"] == "local":
        view["pay_url"] = f"/pay.html?purchase={row['id']}"
    return view


async def get_purchase(pool: asyncpg.Pool, buyer_id: int, purchase_id: int) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM coin_purchases WHERE id = $1 AND buyer_id = $2", purchase_id, buyer_id)
    if row is None:
        raise Problem(404, "purchase-not-found", f"you have no purchase {purchase_id}")
    return row


async def receive_webhook(commerce: Commerce, payload: bytes, signature: str | None) -> dict[str, Any]:
    """Verify a provider webhook and apply its event once; a bad or stale signature is a 400 and changes nothing."""
    node = commerce.node
    secrets = await commerce.webhook_secrets()
    event = webhooks.verify(payload, signature, secrets, node.clock.now_ms(), node.settings.webhook_tolerance_s)
    outcome = await apply_event(commerce, event)
    commerce.metrics.webhooks.labels(outcome=outcome).inc()
    return {"received": True, "event": event["id"], "outcome": outcome}


async def apply_event(commerce: Commerce, event: dict[str, Any]) -> str:
    """Apply one verified event; what happened: credited, reversed, failed, duplicate, ignored."""
    handler = _HANDLERS.get(event["type"])
    obj = (event.get("data") or {}).get("object") or {}
    if handler is not None and isinstance(obj, dict):
        await _resolve_accounts(commerce, obj)
    async with commerce.node.pool.acquire() as conn, conn.transaction():
        seen = await conn.fetchval(
            "INSERT INTO payment_events (event_id, type, received_ms) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            event["id"], event["type"], commerce.node.clock.now_ms(),
        )
        if seen is None:
            return "duplicate"
        if handler is None or not isinstance(obj, dict):
            return "ignored"
        purchase = await _purchase_for(conn, commerce.payments.name, obj)
        if purchase is not None:
            return await handler(commerce, conn, purchase, obj, event)
        order = await order_payments.order_for(conn, commerce.payments.name, obj)
        if order is None:
            log.warning("event %s (%s) names no purchase or order of ours", event["id"], event["type"])
            return "ignored"
        outcome = await order_payments.apply_event(commerce, conn, order, obj, event)
    await commerce.orders.after_payment_event(order["id"], outcome)
    return outcome


async def _resolve_accounts(commerce: Commerce, obj: dict[str, Any]) -> None:
    """Look up (and cache) the accounts an event may post to, before its transaction holds a connection."""
    async with commerce.node.pool.acquire() as conn:
        purchase = await _purchase_for(conn, commerce.payments.name, obj, lock=False)
    if purchase is not None:
        await commerce.accounts.user(purchase["buyer_id"], ledger.COINS)


async def _purchase_for(
    conn: asyncpg.Connection, provider: str, obj: dict[str, Any], lock: bool = True
) -> asyncpg.Record | None:
    intent_id = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
    if not isinstance(intent_id, str):
        return None
    return await conn.fetchrow(
        "SELECT * FROM coin_purchases WHERE provider = $1 AND provider_ref = $2" + (" FOR UPDATE" if lock else ""),
        provider, intent_id,
    )


async def _succeeded(commerce: Commerce, conn: asyncpg.Connection, purchase: asyncpg.Record,
                     intent: dict[str, Any], event: dict[str, Any]) -> str:
    if purchase["state"] in ("succeeded", "reversed"):  # reversed: all of it was given back before this success
        return "ignored"
    if intent.get("amount") != purchase["amount_cents"] or str(intent.get("currency")).lower() != purchase["currency"]:
        log.error("event %s pays %s %s for purchase %d of %d %s; not crediting", event["id"], intent.get("amount"),
                  intent.get("currency"), purchase["id"], purchase["amount_cents"], purchase["currency"])
        return "ignored"
    accounts, ref, coins = commerce.accounts, purchase["provider_ref"], purchase["coins"]
    legs = [
        Leg(await accounts.platform(ledger.COIN_ISSUANCE, ref), ledger.COIN, -coins),
        Leg(await accounts.user(purchase["buyer_id"], ledger.COINS), ledger.COIN, coins),
        Leg(await accounts.platform(ledger.PROVIDER_CLEARING, ref), ledger.USD, purchase["amount_cents"]),
        Leg(await accounts.platform(ledger.COIN_SALES, ref), ledger.USD, -purchase["amount_cents"]),
    ]
    await ledger.post(conn, "purchase", f"purchase:{purchase['provider']}:{ref}", commerce.node.clock.now_ms(), legs,
                      actor_id=purchase["buyer_id"], details=_details(purchase, event))
    await conn.execute("UPDATE coin_purchases SET state = 'succeeded' WHERE id = $1", purchase["id"])
    commerce.metrics.ledger_transactions.labels(kind="purchase").inc()
    if purchase["reversed_cents"]:  # part of it was given back before this success arrived
        await _take_back(commerce, conn, purchase, 0, purchase["reversed_cents"], event)
    return "credited"


async def _failed(commerce: Commerce, conn: asyncpg.Connection, purchase: asyncpg.Record,
                  intent: dict[str, Any], event: dict[str, Any]) -> str:
    if purchase["state"] != "created":
        return "ignored"
    await conn.execute("UPDATE coin_purchases SET state = 'failed' WHERE id = $1", purchase["id"])
    return "failed"


async def _reversed(commerce: Commerce, conn: asyncpg.Connection, purchase: asyncpg.Record,
                    obj: dict[str, Any], event: dict[str, Any]) -> str:
    """A refund or dispute: record the cents given back so far and take back their share of the coins."""
    amount, before = purchase["amount_cents"], purchase["reversed_cents"]
    if event["type"] == "charge.refunded":  # a charge carries the running total of its refunds
        given_back = obj.get("amount_refunded")
        if not isinstance(given_back, int):
            given_back = amount if obj.get("refunded") is True else 0
    else:  # a dispute takes its own amount on top of what was refunded
        disputed = obj.get("amount")
        given_back = before + (disputed if isinstance(disputed, int) else amount)
    total = min(amount, given_back)
    if total <= before:
        return "ignored"
    await conn.execute(
        "UPDATE coin_purchases SET reversed_cents = $2,"
        " state = CASE WHEN $2 = amount_cents THEN 'reversed' ELSE state END WHERE id = $1", purchase["id"], total)
    if purchase["state"] == "succeeded":
        await _take_back(commerce, conn, purchase, before, total, event)
    return "reversed"  # before the success: the late success credits, then takes this back


async def _take_back(commerce: Commerce, conn: asyncpg.Connection, purchase: asyncpg.Record, from_cents: int,
                     to_cents: int, event: dict[str, Any]) -> None:
    """Post the reversal of the cents given back between two running totals, with their share of the coins; what
    the wallet cannot cover freezes it."""
    accounts, ref, now_ms = commerce.accounts, purchase["provider_ref"], commerce.node.clock.now_ms()
    coins, amount = purchase["coins"], purchase["amount_cents"]
    due = coins * to_cents // amount - coins * from_cents // amount
    cents = to_cents - from_cents
    wallet = await accounts.user(purchase["buyer_id"], ledger.COINS)
    held = await conn.fetchval("SELECT balance FROM ledger_accounts WHERE id = $1 FOR UPDATE", wallet)
    taken = min(held, due)
    legs = [
        Leg(wallet, ledger.COIN, -taken),
        Leg(await accounts.platform(ledger.COIN_ISSUANCE, ref), ledger.COIN, taken),
        Leg(await accounts.platform(ledger.PROVIDER_CLEARING, ref), ledger.USD, -cents),
        Leg(await accounts.platform(ledger.REFUNDS_AND_DISPUTES, ref), ledger.USD, cents),
    ]
    await ledger.post(conn, "reversal", f"reversal:{purchase['provider']}:{ref}:{to_cents}", now_ms, legs,
                      actor_id=purchase["buyer_id"],
                      details={**_details(purchase, event), "cents_given_back": cents, "coins_taken": taken})
    if taken < due:
        await conn.execute("UPDATE ledger_accounts SET frozen = true WHERE id = $1", wallet)
        await conn.execute(
            "INSERT INTO wallet_freezes (purchase_id, owner_id, shortfall_coins, created_ms) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (purchase_id) DO UPDATE SET shortfall_coins = wallet_freezes.shortfall_coins"
            " + EXCLUDED.shortfall_coins, resolved_ms = NULL, resolved_by = NULL",
            purchase["id"], purchase["buyer_id"], due - taken, now_ms,
        )
    commerce.metrics.ledger_transactions.labels(kind="reversal").inc()


def _details(purchase: asyncpg.Record, event: dict[str, Any]) -> dict[str, Any]:
    return {"purchase_id": purchase["id"], "package_id": purchase["package_id"], "coins": purchase["coins"],
            "amount_cents": purchase["amount_cents"], "event_id": event["id"], "event_type": event["type"]}


_HANDLERS = {
    "payment_intent.succeeded": _succeeded,
    "payment_intent.payment_failed": _failed,
    "charge.refunded": _reversed,
    "charge.dispute.created": _reversed,
}


async def confirm_local_payment(commerce: Commerce, buyer: Account, purchase_id: int, card_number: str) -> dict:
    """The local provider's test card page: pay (SUCCEEDING_CARD) or be declined (any other card), then deliver the
    signed event to the webhook like Stripe would."""
    if commerce.payments.name != "local":
        raise Problem(409, "not-local-provider", "this node takes payments through Stripe, not the test provider")
    purchase = await get_purchase(commerce.node.pool, buyer.id, purchase_id)
    if purchase["provider_ref"] is None:
        raise Problem(409, "payment-not-started", "the payment was not started; retry the purchase")
    paid = "".join(ch for ch in card_number if ch.isdigit()) == SUCCEEDING_CARD  # the route takes only test cards
    kind = "payment_intent.succeeded" if paid else "payment_intent.payment_failed"
    now_ms = commerce.node.clock.now_ms()
    payload = webhooks.encode_event(local_payment_event(kind, purchase, now_ms // 1000))
    secret = (await commerce.webhook_secrets())[0]
    await receive_webhook(commerce, payload, webhooks.sign(payload, secret, now_ms))
    return purchase_view(await get_purchase(commerce.node.pool, buyer.id, purchase_id))
