"""An order's money in the ledger (USD cents; the creator's earnings in diamonds).

- Paid (`order_paid`, once per order): the buyer's payment arrives with the payment provider (+total), split into
  the platform's fee, the base costs and shipping owed to the fulfilment provider, and the creator's margin, held
  in their `merch_margin_held` account until the order ships.
- Shipped (`order_margin_released`, once): the held margin becomes withdrawable earnings, converted to diamonds at
  the published rate (an explicit conversion: USD to `merch_margin_released`, diamonds from issuance).
- Given back (`order_reversal`, once per running total): a refund, a dispute, a cancellation, a failure or a
  return gives the buyer back cents; each share (fee, cost, margin) is reversed in proportion, exactly in full
  when all of it is given back. A margin already released is taken back from the creator's withdrawable earnings;
  what they no longer hold is recorded as the order's shortfall.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from commerce import ledger
from commerce.ledger import Leg

if TYPE_CHECKING:
    from commerce.service import Commerce


@dataclass(frozen=True)
class Shares:
    """The parts of `given_back` cents of an order: floors of each share, the margin taking what is left, so
    each part is exact when everything is given back and every posting balances."""

    fee: int
    cost: int
    margin: int

    @classmethod
    def of(cls, order: asyncpg.Record, given_back: int) -> Shares:
        total = order["total_cents"]
        fee = order["fee_cents"] * given_back // total
        cost = order["cost_cents"] * given_back // total
        return cls(fee, cost, given_back - fee - cost)


async def resolve_accounts(commerce: Commerce, creator_id: int) -> None:
    """Make (and cache) the creator's accounts an order posts to, before any transaction holds a connection."""
    await commerce.accounts.user(creator_id, ledger.MERCH_MARGIN_HELD)
    await commerce.accounts.user(creator_id, ledger.EARNINGS_WITHDRAWABLE)


async def post_paid(commerce: Commerce, conn: asyncpg.Connection, order: asyncpg.Record,
                    details: dict[str, Any]) -> None:
    accounts, spread = commerce.accounts, f"order:{order['id']}"
    legs = [
        Leg(await accounts.platform(ledger.PROVIDER_CLEARING, spread), ledger.USD, order["total_cents"]),
        Leg(await accounts.platform(ledger.MERCH_FEES, spread), ledger.USD, -order["fee_cents"]),
        Leg(await accounts.platform(ledger.FULFILMENT_PAYABLE, spread), ledger.USD, -order["cost_cents"]),
        Leg(await accounts.user(order["creator_id"], ledger.MERCH_MARGIN_HELD), ledger.USD, -order["margin_cents"]),
    ]
    await ledger.post(conn, "order_paid", f"order_paid:{order['id']}", commerce.node.clock.now_ms(), legs,
                      actor_id=order["buyer_id"], details={**_about(order), **details})
    commerce.metrics.ledger_transactions.labels(kind="order_paid").inc()


async def release_margin(commerce: Commerce, conn: asyncpg.Connection, order: asyncpg.Record) -> asyncpg.Record:
    """The margin still held becomes the creator's withdrawable earnings; the updated order row."""
    held = order["margin_cents"] - Shares.of(order, order["reversed_cents"]).margin
    rate = commerce.catalogue.rate
    now_ms = commerce.node.clock.now_ms()
    if held > 0:
        accounts, spread, diamonds = commerce.accounts, f"order:{order['id']}", held * rate.diamonds_per_cent
        legs = [
            Leg(await accounts.user(order["creator_id"], ledger.MERCH_MARGIN_HELD), ledger.USD, held),
            Leg(await accounts.platform(ledger.MERCH_MARGIN_RELEASED, spread), ledger.USD, -held),
            Leg(await accounts.platform(ledger.DIAMOND_ISSUANCE, spread), ledger.DIAMOND, -diamonds),
            Leg(await accounts.user(order["creator_id"], ledger.EARNINGS_WITHDRAWABLE), ledger.DIAMOND, diamonds),
        ]
        await ledger.post(conn, "order_margin_released", f"order_margin_released:{order['id']}", now_ms, legs,
                          actor_id=order["creator_id"],
                          details={**_about(order), "margin_cents": held, "diamonds": diamonds,
                                   "diamonds_per_cent": rate.diamonds_per_cent, "rate_version": rate.version})
        commerce.metrics.ledger_transactions.labels(kind="order_margin_released").inc()
    return await conn.fetchrow(
        "UPDATE orders SET margin_released_ms = $2, released_cents = $3, released_diamonds_per_cent = $4"
        " WHERE id = $1 RETURNING *", order["id"], now_ms, held, rate.diamonds_per_cent)


async def give_back(commerce: Commerce, conn: asyncpg.Connection, order: asyncpg.Record, to_cents: int,
                    why: str, *, refund_by_us: bool) -> asyncpg.Record:
    """Reverse the shares of the cents given back between the order's running total and `to_cents`; the updated
    order row. `refund_by_us`: the payment provider must still be asked to refund them (else it already did)."""
    before = order["reversed_cents"]
    if to_cents <= before:
        return order
    now, then = Shares.of(order, to_cents), Shares.of(order, before)
    cents, margin = to_cents - before, now.margin - then.margin
    accounts, spread, creator_id = commerce.accounts, f"order:{order['id']}", order["creator_id"]
    legs = [
        Leg(await accounts.platform(ledger.PROVIDER_CLEARING, spread), ledger.USD, -cents),
        Leg(await accounts.platform(ledger.MERCH_FEES, spread), ledger.USD, now.fee - then.fee),
        Leg(await accounts.platform(ledger.FULFILMENT_PAYABLE, spread), ledger.USD, now.cost - then.cost),
    ]
    taken = shortfall = 0
    if order["margin_released_ms"] is None:
        legs.append(Leg(await accounts.user(creator_id, ledger.MERCH_MARGIN_HELD), ledger.USD, margin))
    else:
        legs.append(Leg(await accounts.platform(ledger.MERCH_MARGIN_RELEASED, spread), ledger.USD, margin))
        taken, shortfall = await _take_back_earnings(commerce, conn, order, margin, legs)
    await ledger.post(conn, "order_reversal", f"order_reversal:{order['id']}:{to_cents}",
                      commerce.node.clock.now_ms(), legs, actor_id=order["buyer_id"],
                      details={**_about(order), "cents_given_back": cents, "why": why, "fee_cents": now.fee - then.fee,
                               "cost_cents": now.cost - then.cost, "margin_cents": margin,
                               "diamonds_taken": taken, "shortfall_diamonds": shortfall})
    commerce.metrics.ledger_transactions.labels(kind="order_reversal").inc()
    return await conn.fetchrow(
        "UPDATE orders SET reversed_cents = $2, refund_sent_cents = CASE WHEN $3 THEN refund_sent_cents ELSE $2 END,"
        " shortfall_diamonds = shortfall_diamonds + $4 WHERE id = $1 RETURNING *",
        order["id"], to_cents, refund_by_us, shortfall)


async def _take_back_earnings(commerce: Commerce, conn: asyncpg.Connection, order: asyncpg.Record, margin: int,
                              legs: list[Leg]) -> tuple[int, int]:
    """Add the legs taking a released margin's diamonds back from the creator, as far as they still hold them;
    (diamonds taken, diamonds short)."""
    due = margin * (order["released_diamonds_per_cent"] or 0)
    if due <= 0:
        return 0, 0
    accounts, spread = commerce.accounts, f"order:{order['id']}"
    wallet = await accounts.user(order["creator_id"], ledger.EARNINGS_WITHDRAWABLE)
    held = await conn.fetchval("SELECT balance FROM ledger_accounts WHERE id = $1 FOR UPDATE", wallet)
    taken = min(held, due)
    if taken:
        legs.append(Leg(wallet, ledger.DIAMOND, -taken))
        legs.append(Leg(await accounts.platform(ledger.DIAMOND_ISSUANCE, spread), ledger.DIAMOND, taken))
    return taken, due - taken


def _about(order: asyncpg.Record) -> dict[str, Any]:
    return {"order_id": order["id"], "creator_id": order["creator_id"], "total_cents": order["total_cents"]}
