"""Winning and paying: a closed auction's `auction_wins` row becomes an order charged off-session to the winner's
saved card. If the charge is declined, or needs the winner's action that does not come within
`auction_payment_window_s`, the lot is offered to the next bidder at their own highest bid (a second-chance offer
they accept within the same window), and so on, `auction_second_chance_max` times at most. Every attempt is a row
in `auction_payment_attempts`; an attempt's order is paid only by the verified payment webhook, like any order.

The sweep is driven by the node's clock (tests drive a ManualClock); any node may run it, rows are claimed with
SKIP LOCKED and every step is keyed so that it happens once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from commerce.auctions import announce_payment_step
from commerce.fulfilment import Item
from commerce.orders import checkout, history
from commerce.orders.addresses import Address
from commerce.providers import PaymentProviderError
from livecore.accounts import Account
from livecore.http import Problem

if TYPE_CHECKING:
    from commerce.orders.service import Orders

log = logging.getLogger("livecore.commerce.orders")

OPEN = ("offered", "charging", "requires_action")


async def awaits(conn: asyncpg.Connection, order: asyncpg.Record) -> bool:
    """Whether an auction order's attempt is still waiting for its payment (else the lot has moved on)."""
    return bool(await conn.fetchval(
        "SELECT 1 FROM auction_payment_attempts WHERE order_id = $1 AND state IN ('charging', 'requires_action')",
        order["id"]))


async def order_settled(conn: asyncpg.Connection, order: asyncpg.Record, failure: str | None, now_ms: int) -> None:
    """An auction order's payment was decided by its webhook (inside that transaction): its attempt is paid (and
    the won lot with it) or declined (the sweep passes the lot on)."""
    attempt = await conn.fetchrow("SELECT * FROM auction_payment_attempts WHERE order_id = $1 FOR UPDATE",
                                  order["id"])
    if attempt is None or attempt["state"] not in ("charging", "requires_action"):
        return
    await conn.execute("UPDATE auction_payment_attempts SET state = $2, reason = $3, ended_ms = $4 WHERE id = $1",
                       attempt["id"], "declined" if failure else "paid", failure, now_ms)
    if failure is None:
        await conn.execute("UPDATE auction_wins SET state = 'paid' WHERE auction_id = $1", attempt["auction_id"])


async def sweep(ctx: Orders) -> int:
    """Charge new winners, expire attempts past their window and pass unpaid lots on; how many lots moved."""
    now_ms, limit = ctx.clock.now_ms(), ctx.settings.order_sweep_batch_max
    await _expire(ctx, now_ms, limit)
    due = await ctx.pool.fetch(
        "SELECT w.* FROM auction_wins w WHERE w.state = 'awaiting_payment' AND NOT EXISTS (SELECT 1 FROM"
        " auction_payment_attempts a WHERE a.auction_id = w.auction_id AND a.state IN ('offered', 'requires_action'))"
        " AND NOT EXISTS (SELECT 1 FROM auction_payment_attempts a JOIN orders o ON o.id = a.order_id"
        " WHERE a.auction_id = w.auction_id AND a.state = 'charging' AND o.payment_ref IS NOT NULL)"
        " ORDER BY w.won_ms LIMIT $1", limit)
    for win in due:
        try:
            await _next_step(ctx, win)
        except Exception:
            log.exception("the payment step of auction %d failed; trying again next sweep", win["auction_id"])
    return len(due)


async def _expire(ctx: Orders, now_ms: int, limit: int) -> None:
    """End the attempts whose window has passed; an order waiting for the bidder's action is cancelled (a payment
    that still arrives for it is refunded at once)."""
    reason = "not completed within the payment window"
    async with ctx.pool.acquire() as conn, conn.transaction():
        expired = await conn.fetch(
            "WITH due AS (SELECT id FROM auction_payment_attempts WHERE state IN ('offered', 'requires_action')"
            " AND expires_ms <= $1 ORDER BY expires_ms LIMIT $2 FOR UPDATE SKIP LOCKED)"
            " UPDATE auction_payment_attempts a SET state = 'expired', ended_ms = $1, reason = $3 FROM due"
            " WHERE a.id = due.id RETURNING a.order_id", now_ms, limit, reason)
        for attempt in expired:
            order = attempt["order_id"] and await conn.fetchrow(
                "SELECT * FROM orders WHERE id = $1 AND state = 'pending' FOR UPDATE", attempt["order_id"])
            if order:
                await history.move(conn, order, "cancelled", "auction", reason, now_ms, failure=reason)


async def _next_step(ctx: Orders, win: asyncpg.Record) -> None:
    """Charge the winner (first), go on charging an attempt the provider did not answer, or offer the lot on."""
    attempts = await ctx.pool.fetch("SELECT * FROM auction_payment_attempts WHERE auction_id = $1 ORDER BY n",
                                    win["auction_id"])
    if not attempts:
        attempt = await _start(ctx, win, win["winner_id"], win["amount_cents"], "win", "charging", 1)
        if attempt is None or (await _charge(ctx, attempt))["state"] != "declined":
            return
    elif attempts[-1]["state"] == "charging":  # its order or charge was not made last time
        if (await _charge(ctx, attempts[-1]))["state"] != "declined":
            return
    elif attempts[-1]["state"] == "paid":
        return
    await offer_next(ctx, win, await ctx.pool.fetch(
        "SELECT * FROM auction_payment_attempts WHERE auction_id = $1 ORDER BY n", win["auction_id"]))


async def _start(ctx: Orders, win: asyncpg.Record, bidder_id: int, amount_cents: int, kind: str, state: str,
                 n: int) -> asyncpg.Record | None:
    now_ms = ctx.clock.now_ms()
    return await ctx.pool.fetchrow(
        "INSERT INTO auction_payment_attempts (auction_id, n, bidder_id, amount_cents, kind, state, started_ms,"
        " expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING *",
        win["auction_id"], n, bidder_id, amount_cents, kind, state, now_ms,
        now_ms + ctx.settings.auction_payment_window_s * 1000)


async def offer_next(ctx: Orders, win: asyncpg.Record, attempts: list[asyncpg.Record]) -> None:
    """Offer the lot to the highest bidder not asked yet, at their own highest bid; unsold when nobody is left."""
    asked = [a["bidder_id"] for a in attempts]
    offers_made = sum(1 for a in attempts if a["kind"] == "second_chance")
    nxt = await ctx.pool.fetchrow(
        "SELECT b.bidder_id, max(b.amount_cents) AS amount_cents, min(b.seq) AS first_seq FROM auction_bids b"
        " JOIN auctions a ON a.id = b.auction_id WHERE b.auction_id = $1 AND b.bidder_id <> a.seller_id"
        " AND NOT b.bidder_id = ANY($2::bigint[]) GROUP BY b.bidder_id ORDER BY 2 DESC, 3 LIMIT 1",
        win["auction_id"], asked)
    if nxt is None or offers_made >= ctx.settings.auction_second_chance_max:
        await ctx.pool.execute("UPDATE auction_wins SET state = 'unsold' WHERE auction_id = $1 AND state ="
                               " 'awaiting_payment'", win["auction_id"])
        await announce_payment_step(ctx.commerce.auctions, win["auction_id"], "unsold",
                                    reason="nobody paid for the lot")
        return
    attempt = await _start(ctx, win, nxt["bidder_id"], nxt["amount_cents"], "second_chance", "offered",
                           len(attempts) + 1)
    if attempt is None:
        return
    name = await ctx.pool.fetchval("SELECT display_name FROM accounts WHERE id = $1", attempt["bidder_id"])
    await announce_payment_step(ctx.commerce.auctions, win["auction_id"], "offered", offer={
        "bidder": {"id": attempt["bidder_id"], "display_name": name}, "amount_cents": attempt["amount_cents"],
        "expires_at": attempt["expires_ms"], "n": attempt["n"]})


async def accept_offer(ctx: Orders, bidder: Account, auction_id: int) -> dict[str, Any]:
    """The bidder offered a lot takes it: their saved card is charged; the order is paid by its webhook."""
    attempt = await ctx.pool.fetchrow(
        "UPDATE auction_payment_attempts SET state = 'charging' WHERE auction_id = $1 AND bidder_id = $2"
        " AND state = 'offered' AND expires_ms > $3 RETURNING *", auction_id, bidder.id, ctx.clock.now_ms())
    if attempt is None:
        found = await ctx.pool.fetchrow("SELECT * FROM auction_payment_attempts WHERE auction_id = $1"
                                        " AND bidder_id = $2", auction_id, bidder.id)
        if found is None or found["kind"] != "second_chance":
            raise Problem(404, "offer-not-found", f"you have no offer of auction {auction_id}'s lot")
        if found["state"] in ("offered", "charging", "requires_action", "paid") and found["order_id"] is not None:
            return await attempt_view(ctx, found)
        raise Problem(409, "offer-closed", f"the offer is {found['state']}", state=found["state"])
    charged = await _charge(ctx, attempt)
    if charged["state"] == "declined":
        await sweep(ctx)
    return await attempt_view(ctx, charged)


async def decline_offer(ctx: Orders, bidder: Account, auction_id: int) -> dict[str, Any]:
    attempt = await ctx.pool.fetchrow(
        "UPDATE auction_payment_attempts SET state = 'refused', reason = 'the bidder declined the offer',"
        " ended_ms = $3 WHERE auction_id = $1 AND bidder_id = $2 AND state = 'offered' RETURNING *",
        auction_id, bidder.id, ctx.clock.now_ms())
    if attempt is None:
        raise Problem(404, "offer-not-found", f"you have no open offer of auction {auction_id}'s lot")
    await sweep(ctx)
    return await attempt_view(ctx, attempt)


async def _charge(ctx: Orders, attempt: asyncpg.Record) -> asyncpg.Record:
    """Make the attempt's order (once) and charge the bidder's saved card off-session; the attempt as it stands."""
    order = await _order_for(ctx, attempt)
    if order is None:
        return await ctx.pool.fetchrow("SELECT * FROM auction_payment_attempts WHERE id = $1", attempt["id"])
    if order["payment_ref"] is None:
        method = await ctx.pool.fetchrow(
            "SELECT * FROM payment_methods WHERE owner_id = $1 AND provider = $2 ORDER BY id DESC LIMIT 1",
            attempt["bidder_id"], ctx.commerce.payments.name)
        if method is None:
            return await _declined(ctx, attempt, order, "no saved payment method")
        try:
            charge = await ctx.commerce.payments.charge_saved(
                method["customer_ref"], method["method_ref"], order["total_cents"], order["currency"],
                {"order_id": str(order["id"]), "auction_id": str(attempt["auction_id"])}, f"order-{order['id']}")
        except PaymentProviderError as exc:  # the next sweep tries again with the same key
            log.warning("auction %d: the charge was not taken yet: %s", attempt["auction_id"], exc)
            return attempt
        order = await ctx.pool.fetchrow(
            "UPDATE orders SET payment_ref = $2, client_secret = $3 WHERE id = $1 RETURNING *",
            order["id"], charge.provider_ref, charge.client_secret)
        if charge.status == "declined":
            return await _declined(ctx, attempt, order, charge.reason)
        if charge.status == "requires_action":
            return await ctx.pool.fetchrow(
                "UPDATE auction_payment_attempts SET state = 'requires_action', reason = $2 WHERE id = $1"
                " AND state = 'charging' RETURNING *", attempt["id"], charge.reason) or attempt
        if ctx.commerce.payments.name == "local":
            # Imported here: payments (the webhook's side of an order) calls back into this module.
            from commerce.orders.payments import deliver_local_event

            await deliver_local_event(ctx.commerce, "payment_intent.succeeded", order)
    return await ctx.pool.fetchrow("SELECT * FROM auction_payment_attempts WHERE id = $1", attempt["id"])


async def _order_for(ctx: Orders, attempt: asyncpg.Record) -> asyncpg.Record | None:
    """The attempt's order, made the first time: the lot at the bid, shipped to the bidder's saved address."""
    if attempt["order_id"] is not None:
        return await ctx.pool.fetchrow("SELECT * FROM orders WHERE id = $1", attempt["order_id"])
    saved = await ctx.pool.fetchval("SELECT address FROM shipping_addresses WHERE owner_id = $1",
                                    attempt["bidder_id"])
    if saved is None:
        await _declined(ctx, attempt, None, "no shipping address saved")
        return None
    win = await ctx.pool.fetchrow("SELECT * FROM auction_wins WHERE auction_id = $1", attempt["auction_id"])
    line = await checkout.price_line(ctx, win["product_id"], win["variant_id"], 1, attempt["amount_cents"])
    address = orjson.loads(saved)
    try:
        _, shipping = await checkout.quote(ctx, Address.model_validate(address), [Item(line.variant_id, 1)])
    except Problem as exc:
        if exc.status >= 500:  # the provider is away: the next sweep tries again
            log.warning("auction %d: no shipping quote yet: %s", attempt["auction_id"], exc.detail)
            return None
        await _declined(ctx, attempt, None, exc.detail)
        return None
    order, _ = await checkout.insert_order(ctx, attempt["bidder_id"], f"auction-{attempt['auction_id']}-"
                                           f"{attempt['n']}", "auction", attempt["auction_id"], [line], address,
                                           shipping)
    await ctx.pool.execute("UPDATE auction_payment_attempts SET order_id = $2 WHERE id = $1", attempt["id"],
                           order["id"])
    return order


async def _declined(ctx: Orders, attempt: asyncpg.Record, order: asyncpg.Record | None, reason: str
                    ) -> asyncpg.Record:
    now_ms = ctx.clock.now_ms()
    async with ctx.pool.acquire() as conn, conn.transaction():
        if order is not None:
            locked = await conn.fetchrow("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order["id"])
            if locked["state"] == "pending":
                await history.move(conn, locked, "failed", "payment", reason, now_ms, failure=reason)
        updated = await conn.fetchrow(
            "UPDATE auction_payment_attempts SET state = 'declined', reason = $2, ended_ms = $3 WHERE id = $1"
            " AND state IN ('charging', 'requires_action') RETURNING *", attempt["id"], reason, now_ms)
    return updated or attempt


async def after_paid(ctx: Orders, order: asyncpg.Record) -> None:
    """Announce who paid for a lot when it was not its winner (a second chance taken)."""
    attempt = await ctx.pool.fetchrow("SELECT * FROM auction_payment_attempts WHERE order_id = $1", order["id"])
    if attempt is not None and attempt["kind"] == "second_chance" and attempt["state"] == "paid":
        name = await ctx.pool.fetchval("SELECT display_name FROM accounts WHERE id = $1", attempt["bidder_id"])
        await announce_payment_step(ctx.commerce.auctions, attempt["auction_id"], "won",
                                    paid_by={"id": attempt["bidder_id"], "display_name": name},
                                    amount_cents=attempt["amount_cents"], order_id=order["id"])


async def attempt_view(ctx: Orders, attempt: asyncpg.Record) -> dict[str, Any]:
    view = {"auction_id": attempt["auction_id"], "n": attempt["n"], "kind": attempt["kind"],
            "state": attempt["state"], "amount_cents": attempt["amount_cents"], "reason": attempt["reason"],
            "expires_at": attempt["expires_ms"], "order": None}
    if attempt["order_id"] is not None:
        order = await ctx.pool.fetchrow("SELECT * FROM orders WHERE id = $1", attempt["order_id"])
        view["order"] = await history.order_view(ctx.pool, order)
    return view


async def attempts_of(ctx: Orders, auction_id: int) -> list[dict[str, Any]]:
    rows = await ctx.pool.fetch("SELECT * FROM auction_payment_attempts WHERE auction_id = $1 ORDER BY n",
                                auction_id)
    return [{"n": r["n"], "bidder_id": r["bidder_id"], "kind": r["kind"], "state": r["state"],
             "amount_cents": r["amount_cents"], "reason": r["reason"], "order_id": r["order_id"],
             "started_at": r["started_ms"], "expires_at": r["expires_ms"], "ended_at": r["ended_ms"]} for r in rows]
