"""Escrow: money a payer commits to a payee, held by the ledger until a deal is done or called off.

Paid from the payer's coins at the published gift rate (the coins are retired into issuance and their diamonds
issued into the payer's `offer_escrow` account, so coins outstanding still equal the wallets), then either
- released (`escrow_released`): the held diamonds become the payee's withdrawable earnings, less the platform's
  fee (to `platform_revenue`), or
- given back (`escrow_returned`): exactly the coins taken are credited back and the diamonds retired.

Each deal has one reference (`ref`, e.g. `offer:17`); every posting's external id is derived from it, so holding,
releasing or giving back one deal moves money at most once however often it is asked. Callers post inside their own
database transaction (with the deal's row locked), after `resolve_accounts` made the accounts outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from commerce import ledger
from commerce.ledger import Leg

if TYPE_CHECKING:
    from commerce.service import Commerce

HELD, RELEASED, RETURNED = "escrow_held", "escrow_released", "escrow_returned"


@dataclass(frozen=True)
class Held:
    """What a deal's escrow holds: the coins taken from the payer and their diamonds, at a rate version."""

    coins: int
    diamonds: int
    rate_version: int


def price_in_coins(commerce: Commerce, price_cents: int) -> Held:
    """The coins (rounded up) and diamonds that pay `price_cents` at the current gift rate."""
    rate = commerce.catalogue.rate
    diamonds_due = price_cents * rate.diamonds_per_cent
    coins = -(-diamonds_due // rate.diamonds_per_coin)
    return Held(coins, coins * rate.diamonds_per_coin, rate.version)


async def resolve_accounts(commerce: Commerce, payer_id: int, payee_id: int) -> None:
    """Make (and cache) the accounts a deal posts to, before any transaction holds a connection."""
    accounts = commerce.accounts
    await accounts.user(payer_id, ledger.COINS)
    await accounts.user(payer_id, ledger.OFFER_ESCROW)
    await accounts.user(payee_id, ledger.EARNINGS_WITHDRAWABLE)


async def hold(commerce: Commerce, conn: asyncpg.Connection, ref: str, payer_id: int, held: Held,
               details: dict[str, object]) -> bool:
    """Take `held.coins` from the payer into escrow; False when this deal was held before (nothing moves).
    Raises Problem 402 `insufficient-funds` (the caller's transaction must roll back)."""
    accounts, spread = commerce.accounts, ref
    legs = [
        Leg(await accounts.user(payer_id, ledger.COINS), ledger.COIN, -held.coins),
        Leg(await accounts.platform(ledger.COIN_ISSUANCE, spread), ledger.COIN, held.coins),
        Leg(await accounts.platform(ledger.DIAMOND_ISSUANCE, spread), ledger.DIAMOND, -held.diamonds),
        Leg(await accounts.user(payer_id, ledger.OFFER_ESCROW), ledger.DIAMOND, held.diamonds),
    ]
    return await _post(commerce, conn, HELD, ref, payer_id, legs, {
        **details, "coins": held.coins, "diamonds": held.diamonds, "rate_version": held.rate_version})


async def release(commerce: Commerce, conn: asyncpg.Connection, ref: str, payer_id: int, payee_id: int,
                  held: Held, fee_percent: int, details: dict[str, object]) -> int | None:
    """Pay a held deal to the payee less `fee_percent`; the payee's diamonds, or None if it was paid before."""
    accounts, spread = commerce.accounts, ref
    fee = held.diamonds * fee_percent // 100
    legs = [
        Leg(await accounts.user(payer_id, ledger.OFFER_ESCROW), ledger.DIAMOND, -held.diamonds),
        Leg(await accounts.user(payee_id, ledger.EARNINGS_WITHDRAWABLE), ledger.DIAMOND, held.diamonds - fee),
        Leg(await accounts.platform(ledger.PLATFORM_REVENUE, spread), ledger.DIAMOND, fee),
    ]
    posted = await _post(commerce, conn, RELEASED, ref, payee_id, legs, {
        **details, "diamonds": held.diamonds, "fee_diamonds": fee, "fee_percent": fee_percent})
    return held.diamonds - fee if posted else None


async def give_back(commerce: Commerce, conn: asyncpg.Connection, ref: str, payer_id: int, held: Held,
                    details: dict[str, object]) -> bool:
    """Return a held deal's coins to the payer; False when it was given back before."""
    accounts, spread = commerce.accounts, ref
    legs = [
        Leg(await accounts.user(payer_id, ledger.OFFER_ESCROW), ledger.DIAMOND, -held.diamonds),
        Leg(await accounts.platform(ledger.DIAMOND_ISSUANCE, spread), ledger.DIAMOND, held.diamonds),
        Leg(await accounts.platform(ledger.COIN_ISSUANCE, spread), ledger.COIN, -held.coins),
        Leg(await accounts.user(payer_id, ledger.COINS), ledger.COIN, held.coins),
    ]
    return await _post(commerce, conn, RETURNED, ref, payer_id, legs, {
        **details, "coins": held.coins, "diamonds": held.diamonds})


async def _post(commerce: Commerce, conn: asyncpg.Connection, kind: str, ref: str, actor_id: int, legs: list[Leg],
                details: dict[str, object]) -> bool:
    posted = await ledger.post(conn, kind, f"{kind}:{ref}", commerce.node.clock.now_ms(), legs, actor_id=actor_id,
                               details={"ref": ref, **details})
    if posted is None:
        return False
    commerce.metrics.ledger_transactions.labels(kind=kind).inc()
    return True
